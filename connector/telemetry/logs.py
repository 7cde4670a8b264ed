"""Logging: ``event key=value`` lines (or one JSON object per line), emails and secrets masked.

* :class:`RedactingFilter` renders each record's message once (``msg % args``), masks emails
  (``j***@example.com``) and every registered secret (``****abcd``), and stores the result back
  with ``args`` cleared, so no later handler or formatter can format the clear values again.
  It also notes the active span's ``trace_id``/``span_id`` on the record.
* Formatters mask their final text too: tracebacks and exception messages are added after filters.
* httpx and httpcore log whole URLs at INFO (and those can contain emails): they are set to
  WARNING.

Secrets are registered at start-up (``register_secret(settings.hubspot.access_token...)``); the
registry is process-wide because log records are.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import IO, Any

from opentelemetry import trace

from connector.redact import mask_emails, mask_token

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*")
_MIN_SECRET_LENGTH = 6
_QUIET_LOGGERS = ("httpx", "httpcore", "hpack")

_secrets: dict[str, str] = {}
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Never write ``value`` in clear: log lines show its fingerprint (``****`` + last 4 chars).

    Values shorter than 6 characters are ignored: masking them would garble ordinary text.
    """
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _secrets_lock:
            # Longest first, so a secret that contains another is replaced whole.
            _secrets[value] = mask_token(value)
            ordered = sorted(_secrets.items(), key=lambda item: -len(item[0]))
            _secrets.clear()
            _secrets.update(ordered)


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    with _secrets_lock:
        _secrets.clear()


def redact(text: str) -> str:
    """``text`` with registered secrets, bearer tokens and emails masked."""
    for secret, masked in list(_secrets.items()):
        if secret in text:
            text = text.replace(secret, masked)
    if "earer" in text:
        text = _BEARER.sub(r"\1 ****", text)
    return mask_emails(text)


class RedactingFilter(logging.Filter):
    """Masks emails and secrets in each record's final message; adds the active trace ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_redacted", False):
            try:
                message = record.getMessage()
            except Exception:  # a bad format string must not lose the line
                message = f"{record.msg!r} {record.args!r}"
            record.msg = redact(message)
            record.args = None
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD_ATTRS and isinstance(value, str):
                    record.__dict__[key] = redact(value)
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = f"{span_context.trace_id:032x}"
                record.span_id = f"{span_context.span_id:016x}"
            record._redacted = True
        return True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "trace_id", "span_id", "_redacted"}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class KeyValueFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO connector.sink event key=value ... trace_id=.. span_id=..``.

    The message itself is the ``event key=value`` part (the habit for every log call).
    """

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            parts.append(f"trace_id={trace_id} span_id={getattr(record, 'span_id', '')}")
        line = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return redact(line)


#: A ``key=value`` token of a message: the value ends at whitespace unless it is a JSON string
#: (``text="two words"``, as librdkafka's lines carry their text; see connector.kafka.logs).
_PAIR = re.compile(r'(?:^|(?<=\s))(?P<key>[^\s=]+)=(?P<value>"(?:[^"\\]|\\.)*"(?=\s|$)|\S*)')


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            text = json.loads(value)
        except ValueError:
            return value
        return text if isinstance(text, str) else value
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, the message's key=value pairs, ids.

    A pair's value is one token, or a JSON-quoted string (``text="a b"`` gives ``"a b"``).
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, rest = message.partition(" ")
        data: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
        }
        for match in _PAIR.finditer(rest):
            key, value = match["key"], match["value"]
            if key not in data:
                data[key] = _unquoted(value)
        data["message"] = message
        data.update({k: v for k, v in _extras(record).items() if k not in data})
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            data["trace_id"] = trace_id
            data["span_id"] = getattr(record, "span_id", None)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, default=str, ensure_ascii=False))


def configure_logging(level: str | int = "INFO", *, json: bool = False,
                      stream: IO[str] | None = None) -> logging.Handler:
    """Set up the root logger: one stream handler (stderr by default), masking, quiet httpx.

    Replaces handlers a previous call installed; returns the handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_connector_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else KeyValueFormatter())
    handler.addFilter(RedactingFilter())
    handler._connector_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
