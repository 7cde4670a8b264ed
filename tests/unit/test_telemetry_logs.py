"""Log lines: `event key=value` or JSON, emails masked, secrets never in clear, trace ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from connector.telemetry import (
    RedactingFilter,
    Telemetry,
    configure_logging,
    redact,
    register_secret,
)
from connector.telemetry.logs import forget_secrets

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
EMAIL = "jane.doe@example.com"
log = logging.getLogger("connector.test")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in quiet.items():
        logging.getLogger(name).setLevel(value)
    forget_secrets()


def test_filter_masks_emails_and_registered_secrets_in_caplog(
        caplog: pytest.LogCaptureFixture) -> None:
    register_secret(TOKEN)
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="connector.test"):
        log.info("hubspot.request email=%s token=%s path=%s", EMAIL, TOKEN,
                 "/contacts/jane.doe%40example.com/breakdown")
        log.info("auth header=%s", f"Authorization: Bearer {TOKEN[:20]}")
    text = caplog.text
    assert EMAIL not in text and "jane.doe%40" not in text and TOKEN not in text
    assert "email=j***@example.com" in text
    assert "token=****5555" in text
    assert "/contacts/j***%40example.com/breakdown" in text
    assert "Bearer ****" in text and TOKEN[:20] not in text
    assert all(record.args is None for record in caplog.records)  # nothing left to re-format


def test_key_value_lines_with_trace_ids_and_masked_tracebacks() -> None:
    register_secret(TOKEN)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    with Telemetry.for_tests() as telemetry, telemetry.tracing.span("work"):
        log.info("sink.flushed records=%s email=%s", 3, EMAIL)
    log.debug("invisible at INFO")
    try:
        raise RuntimeError(f"rejected {EMAIL} with {TOKEN}")
    except RuntimeError:
        log.exception("sink.failed operation=%s", "upsert")
    lines = stream.getvalue().splitlines()
    first = lines[0]
    assert " INFO connector.test sink.flushed records=3 email=j***@example.com trace_id=" in first
    assert first.endswith(tuple("0123456789abcdef")) and "span_id=" in first
    spans = telemetry.finished_spans()
    assert f"trace_id={spans[0].context.trace_id:032x}" in first
    assert not any("invisible" in line for line in lines)
    output = stream.getvalue()
    assert "sink.failed operation=upsert" in output and "Traceback" in output
    assert EMAIL not in output and TOKEN not in output
    assert "rejected j***@example.com with ****5555" in output


def test_json_lines() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    log.warning("hubspot.error method=%s status=%s email=%s", "POST", 429, EMAIL,
                extra={"partition": 3})
    data = json.loads(stream.getvalue())
    assert data["event"] == "hubspot.error"
    assert (data["method"], data["status"], data["email"]) == ("POST", "429", "j***@example.com")
    assert data["level"] == "WARNING" and data["logger"] == "connector.test"
    assert data["partition"] == 3
    assert "trace_id" not in data  # no active span


def test_json_reads_a_json_quoted_value_as_one_field() -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    log.info("broker.said text=%s after=%s open=%s", json.dumps('a b=c "d"'), 1, '"x y')
    data = json.loads(stream.getvalue())
    assert data["text"] == 'a b=c "d"' and data["after"] == "1"
    assert "b" not in data  # inside the quotes: not a pair of its own
    assert data["open"] == '"x'  # no closing quote: one token, as before


def test_httpx_is_quiet_at_info_and_configure_is_idempotent() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    configure_logging("INFO", stream=stream)
    logging.getLogger("httpx").info('HTTP Request: GET https://x/?email=%s "200"', EMAIL)
    assert logging.getLogger("httpx").level == logging.WARNING
    assert stream.getvalue() == ""
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_connector_handler", False)]
    assert len(ours) == 1


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret(None)
    assert redact("abc abc") == "abc abc"


def test_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("secret-1234")
    register_secret("prefix-secret-1234-suffix")
    assert redact("x prefix-secret-1234-suffix y") == "x ****ffix y"
