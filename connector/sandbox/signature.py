"""HubSpot request signatures (reference §7): v3 (HMAC-SHA256, base64) and v2 (SHA-256 hex)."""

from __future__ import annotations

import base64
import hashlib
import hmac

_V3_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def v3_request_uri(uri: str) -> str:
    """Decode only the sequences HubSpot's v3 algorithm decodes (case-insensitive hex)."""
    out = []
    i = 0
    while i < len(uri):
        chunk = uri[i : i + 3].upper()
        if uri[i] == "%" and chunk in _V3_DECODE:
            out.append(_V3_DECODE[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: str, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(secret, method + decoded uri + body + timestamp))."""
    source = f"{method}{v3_request_uri(uri)}{body}{timestamp_ms}".encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_v2(secret: str, method: str, uri: str, body: str) -> str:
    """hex(SHA-256(secret + method + uri + body))."""
    return hashlib.sha256(f"{secret}{method}{uri}{body}".encode()).hexdigest()


def is_valid_v3(
    secret: str,
    method: str,
    uri: str,
    body: str,
    timestamp_ms: str,
    signature: str,
    *,
    now_ms: int,
    max_age_ms: int = 300_000,
) -> bool:
    """Verify a v3 signature, rejecting timestamps older than five minutes."""
    try:
        age = now_ms - int(timestamp_ms)
    except ValueError:
        return False
    if age > max_age_ms:
        return False
    expected = sign_v3(secret, method, uri, body, timestamp_ms)
    return hmac.compare_digest(expected, signature)
