"""HubSpot request signatures (reference §7): sign and verify v1, v2 and v3.

HubSpot signs the requests it sends to an app (e.g. the ``eventDetailsUrl`` callback):

* v3 — ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret,
  method + requestUri + body + timestamp)), with ``X-HubSpot-Request-Timestamp`` in epoch ms;
  requests older than 5 minutes are rejected. ``requestUri`` is the full URL with only the
  sequences of :data:`V3_URI_DECODES` decoded (exactly as HubSpot's SDKs do).
* v2 — ``X-HubSpot-Signature`` = hex(SHA-256(secret + method + uri + body)), URI byte-exact.
* v1 — ``X-HubSpot-Signature`` = hex(SHA-256(secret + body)).

Verification failures raise :class:`~connector.hubspot.errors.SignatureError` whose ``reason`` is
``"missing"``, ``"malformed"``, ``"expired"`` or ``"mismatch"``; :func:`is_valid_request` is the
boolean form. The clock is injected (``now_ms``) so tests never depend on wall-clock time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from connector.hubspot.errors import SignatureError

SIGNATURE_V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
SIGNATURE_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"
MAX_TIMESTAMP_SKEW_MS = 300_000

V3_URI_DECODES: tuple[tuple[str, str], ...] = (
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def normalize_v3_uri(uri: str) -> str:
    """Decode only the percent-sequences HubSpot decodes before signing (reference §7 step 2)."""
    for encoded, char in V3_URI_DECODES:
        uri = uri.replace(encoded, char)
    return uri


def sign_v3(
    client_secret: str, *, method: str, uri: str, body: bytes | str, timestamp: int | str
) -> str:
    """The v3 signature (base64) of one request."""
    source = (
        method.upper().encode()
        + normalize_v3_uri(uri).encode("utf-8")
        + _bytes(body)
        + str(timestamp).encode()
    )
    digest = hmac.new(client_secret.encode("utf-8"), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v2(client_secret: str, *, method: str, uri: str, body: bytes | str) -> str:
    """The v2 signature (hex) of one request; ``uri`` must be exactly what was called."""
    source = client_secret.encode("utf-8") + method.upper().encode() + uri.encode() + _bytes(body)
    return hashlib.sha256(source).hexdigest()


def sign_v1(client_secret: str, *, body: bytes | str) -> str:
    """The v1 signature (hex) of one request body."""
    return hashlib.sha256(client_secret.encode("utf-8") + _bytes(body)).hexdigest()


def _check(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise SignatureError("mismatch", "signature does not match the request")


def verify_v3(
    client_secret: str,
    *,
    signature: str,
    method: str,
    uri: str,
    body: bytes | str,
    timestamp: int | str,
    now_ms: Callable[[], int] = _now_ms,
    max_skew_ms: int = MAX_TIMESTAMP_SKEW_MS,
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is a fresh, valid v3 signature.

    A timestamp more than ``max_skew_ms`` in the past — or in the future, which only a wrong
    clock or a forgery produces — is ``"expired"``.
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        raise SignatureError("malformed", "request timestamp is not epoch milliseconds") from None
    if abs(now_ms() - ts) > max_skew_ms:
        raise SignatureError("expired", "request timestamp is outside the 5-minute window")
    _check(sign_v3(client_secret, method=method, uri=uri, body=body, timestamp=ts), signature)


def verify_v2(
    client_secret: str, *, signature: str, method: str, uri: str, body: bytes | str
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is the v2 signature of the request."""
    _check(sign_v2(client_secret, method=method, uri=uri, body=body), signature)


def verify_v1(client_secret: str, *, signature: str, body: bytes | str) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is the v1 signature of the body."""
    _check(sign_v1(client_secret, body=body), signature)


def verify_request(
    client_secret: str,
    *,
    method: str,
    uri: str,
    body: bytes | str,
    headers: Mapping[str, str],
    now_ms: Callable[[], int] = _now_ms,
) -> int:
    """Verify a HubSpot request by its headers, preferring v3; return the version checked.

    ``headers`` should be case-insensitive (``httpx.Headers``, Starlette ``Headers``).
    """
    v3 = headers.get(SIGNATURE_V3_HEADER)
    if v3 is not None:
        timestamp = headers.get(TIMESTAMP_HEADER)
        if timestamp is None:
            raise SignatureError("missing", f"{TIMESTAMP_HEADER} header is missing")
        verify_v3(
            client_secret,
            signature=v3,
            method=method,
            uri=uri,
            body=body,
            timestamp=timestamp,
            now_ms=now_ms,
        )
        return 3
    legacy = headers.get(SIGNATURE_HEADER)
    if legacy is None:
        raise SignatureError("missing", "no HubSpot signature header")
    version = (headers.get(VERSION_HEADER) or "v1").strip().lower()
    if version == "v2":
        verify_v2(client_secret, signature=legacy, method=method, uri=uri, body=body)
        return 2
    if version == "v1":
        verify_v1(client_secret, signature=legacy, body=body)
        return 1
    raise SignatureError("malformed", f"unknown signature version {version!r}")


def is_valid_request(
    client_secret: str,
    *,
    method: str,
    uri: str,
    body: bytes | str,
    headers: Mapping[str, str],
    now_ms: Callable[[], int] = _now_ms,
) -> bool:
    """Boolean form of :func:`verify_request`."""
    try:
        verify_request(
            client_secret, method=method, uri=uri, body=body, headers=headers, now_ms=now_ms
        )
    except SignatureError:
        return False
    return True


def signed_headers_v3(
    client_secret: str, *, method: str, uri: str, body: bytes | str, timestamp_ms: int
) -> dict[str, str]:
    """The v3 headers HubSpot would send with this request (for emulators and tests)."""
    return {
        SIGNATURE_V3_HEADER: sign_v3(
            client_secret, method=method, uri=uri, body=body, timestamp=timestamp_ms
        ),
        TIMESTAMP_HEADER: str(timestamp_ms),
    }
