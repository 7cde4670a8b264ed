"""`connector replay` bad input that needs no broker: usage errors (exit 2) with an example."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.cli.replay import replay_group

if "replay" not in main.commands:
    main.add_command(replay_group)

# Nothing listens here: a test reaching Kafka would fail, not pass by accident.
ENV = {"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["replay", *args], env=ENV)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--by-duration", "1y"], "e.g. PT1H"),
    (["--by-duration", "PT0S"], "positive"),
    (["--to-datetime", "2100-01-01T00:00:00Z"], "is in the future"),
    (["--to-datetime", "2026-01-01T10:00:00"], "no time zone"),
    (["--to-datetime", "tomorrow"], "e.g. 2026-01-01T10:00:00Z"),
    (["--to-offset", "abc"], "e.g. --to-offset 1200"),
    (["--to-offset", "-3"], "e.g. --to-offset 1200"),
    (["--shift-by", "x"], "e.g. --shift-by -500"),
    (["--to-earliest", "--topic", "t:a"], "e.g. webinar.activity"),
    ([], "choose exactly one of"),
    (["--to-earliest", "--to-latest"], "got --to-earliest, --to-latest"),
    (["--to-earliest", "--execute", "--dry-run"], "exclude each other"),
])
def test_reset_usage_errors(args: list[str], expected: str) -> None:
    code, output = invoke("reset", "--group", "sink", *args)
    assert code == 2, output
    assert expected in output
    assert "Traceback" not in output


def test_reset_offsets_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "offsets.csv"
    bad.write_text("t,0,10\nt,zero,3\n")
    code, output = invoke("reset", "--group", "sink", "--from-file", str(bad))
    assert code == 2 and "line 2" in output and "webinar.activity,0,1200" in output
    good = tmp_path / "good.csv"
    good.write_text("t,0,10\n")
    code, output = invoke("reset", "--group", "sink", "--from-file", str(good), "--topic", "t")
    assert code == 2 and "leave out --topic" in output
    code, output = invoke("reset", "--group", "sink", "--from-file", str(tmp_path / "none.csv"))
    assert code == 2 and "does not exist" in output


@pytest.mark.parametrize(("args", "expected"), [
    (["--from", "2100-01-01T00:00:00Z"], "is in the future"),
    (["--from", "1h", "--to", "2100-01-01T00:00:00Z"], "is in the future"),
    (["--from", "1h", "--to", "2h"], "must be after --from"),
    (["--from", "whenever"], "neither a datetime"),
    (["--from", "1h", "--topic", "commands"], "'commands' is not one of"),
    ([], "Missing option '--from'"),
    (["--from", "1h", "--account", " "], "expected a platform account id"),
])
def test_backfill_usage_errors(args: list[str], expected: str) -> None:
    code, output = invoke("backfill", *args)
    assert code == 2, output
    assert expected in output


def test_help_documents_the_commands() -> None:
    code, output = invoke("reset", "--help")
    assert code == 0 and "kafka-consumer-groups" in output and "--to-datetime" in output
    code, output = invoke("backfill", "--help")
    assert code == 0 and "temporary" in output and "progress bar" in output
    assert "--account" in output and "only that account's commands" in output
