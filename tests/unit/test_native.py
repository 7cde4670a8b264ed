"""The native core: precompiled codecs current and used, and a stale build refused."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastavro import parse_schema
from hypothesis import HealthCheck, given, settings

from connector import native
from connector.cli.check_config import check_config_command
from connector.normalize.command import Attendance, Command, EventUpsert
from connector.serde import compiled as compiled_module
from connector.serde import precompiled
from connector.serde.catalog import ACTIVITY_SCHEMA, COMMAND_SCHEMA, SchemaCatalog
from connector.serde.compiled import compile_reader, compile_writer, precompiled_module
from tests.unit.test_serde_compiled import ACTIVITIES, COMMANDS

CATALOG = SchemaCatalog.from_directory()


def test_the_precompiled_codecs_are_generated_from_the_current_schemas_and_generator() -> None:
    expected = precompiled_module([schema.parsed for schema in CATALOG.entries()],
                                  "scripts/build_native.py")
    current = native.source_path("connector.serde.precompiled").read_text(encoding="utf-8")
    assert current == expected, "run .venv/bin/python scripts/build_native.py to regenerate it"


def test_every_shipped_schema_reads_and_writes_through_a_precompiled_function() -> None:
    for schema in CATALOG.entries():
        assert compile_reader(schema.parsed) in precompiled.READERS.values(), schema.full_name
        assert compile_writer(schema.parsed) in precompiled.WRITERS.values(), schema.full_name


def _generated(parsed: Any) -> tuple[Any, Any]:
    """The same schema's reader and writer exec'd at run time (what any other schema gets)."""
    reader = compiled_module.generate_reader(parsed)
    writer = compiled_module.generate_writer(parsed)
    assert reader is not None and writer is not None
    return (reader.build("read", compiled_module.reader_source(reader, "read")),
            writer.build("write", compiled_module.writer_source(writer, "write")))


ACTIVITY = CATALOG.reader(ACTIVITY_SCHEMA).parsed
ACTIVITY_GENERATED = _generated(ACTIVITY)
COMMAND = CATALOG.reader(COMMAND_SCHEMA).parsed
COMMAND_GENERATED = _generated(COMMAND)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIVITIES)
def test_a_precompiled_activity_codec_agrees_with_the_generated_one(datum: dict[str, Any]) -> None:
    read, write = ACTIVITY_GENERATED
    body = write(datum)
    assert compile_writer(ACTIVITY)(datum) == body  # type: ignore[misc]
    assert compile_reader(ACTIVITY)(body, 0) == read(body, 0)  # type: ignore[misc]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COMMANDS)
def test_a_precompiled_command_codec_agrees_with_the_generated_one(command: Any) -> None:
    read, write = COMMAND_GENERATED
    datum = command.to_avro()
    body = write(datum)
    assert compile_writer(COMMAND)(datum) == body  # type: ignore[misc]
    assert compile_reader(COMMAND)(body, 0) == read(body, 0)  # type: ignore[misc]


def test_precompiled_code_keeps_names_that_look_like_its_own() -> None:
    """Field names are string literals in the code: never renamed with the constants."""
    parsed = parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "_c3", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "_c4", "type": "string"}]})
    namespace: dict[str, Any] = {}
    exec(precompiled_module([parsed], "test"), namespace)
    (read,) = namespace["READERS"].values()
    (write,) = namespace["WRITERS"].values()
    datum = {"_c3": "B", "_c4": "x"}
    assert read(write(datum), 0) == (datum, 3)


def test_a_value_the_precompiled_writer_refuses_is_refused_alike() -> None:
    _read, write = COMMAND_GENERATED
    bad = {"commandId": 7, "externalEventId": "w", "externalAccountId": "a", "command": None}
    for writer in (write, compile_writer(COMMAND)):
        with pytest.raises(compiled_module.GiveUp):
            writer(bad)  # type: ignore[misc]


# -- the build record ---------------------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in package folder holding every native module's source, nothing built."""
    monkeypatch.setattr(native, "PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(native, "BUILD_RECORD", tmp_path / "native-build.json")
    monkeypatch.setattr(native, "running_interpreted", lambda: False)
    for module in native.MODULES:
        source = native.source_path(module)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {module}\n")
    return tmp_path


def _extension(module: str) -> Path:
    source = native.source_path(module)
    return source.with_name(source.stem + EXTENSION_SUFFIXES[0])


def _build(toolchain: str | None = None) -> None:
    for module in native.MODULES:
        _extension(module).write_bytes(b"")
    _extension(native.GROUP + "__mypyc").write_bytes(b"")  # the shared library
    native.BUILD_RECORD.write_text(json.dumps({"toolchain": toolchain or native.toolchain(),
                                               "sources": native.source_digests()}))


def test_without_a_build_everything_runs_interpreted(package: Path) -> None:
    status = native.ensure_current()
    assert status.interpreted == native.MODULES and not status.compiled and status.ok
    assert "interpreted" in status.describe()


def test_a_current_build_runs_compiled(package: Path) -> None:
    _build()
    status = native.ensure_current()
    assert status.compiled == native.MODULES and not status.interpreted
    assert status.describe() == f"native core: compiled ({len(native.MODULES)} modules, mypyc)"


def test_a_source_edited_after_the_build_is_refused(package: Path) -> None:
    _build()
    edited = native.MODULES[3]
    with native.source_path(edited).open("a") as source:
        source.write("x = 1\n")
    assert native.status().stale == (edited,)
    with pytest.raises(native.StaleNativeBuild, match=edited) as raised:
        native.ensure_current()
    assert "scripts/build_native.py" in str(raised.value)


def test_an_extension_of_a_module_no_longer_compiled_is_refused(package: Path) -> None:
    _build()
    (package / "normalize" / "old.py").write_text("")
    _extension("connector.normalize.old").write_bytes(b"")
    with pytest.raises(native.StaleNativeBuild, match=r"connector\.normalize\.old built but no"):
        native.ensure_current()


def test_a_build_for_another_python_is_refused_as_such(package: Path) -> None:
    _build(toolchain="cpython-399 .cpython-399-x86_64-linux-gnu.so")
    with pytest.raises(native.StaleNativeBuild, match="built for cpython-399"):
        native.ensure_current()


def test_native_core_0_runs_the_sources_whatever_is_built(package: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _build()
    native.source_path(native.MODULES[0]).write_text("# edited\n")
    monkeypatch.setattr(native, "running_interpreted", lambda: True)
    status = native.ensure_current()  # stale as built, but the sources run: nothing to refuse
    assert status.forced and status.interpreted == native.MODULES
    assert "NATIVE_CORE=0" in status.describe()
    assert native.status(as_built=True).stale == (native.MODULES[0],)


def test_importing_a_stale_package_fails_before_loading_an_extension(tmp_path: Path) -> None:
    """The real package, copied with a fake build whose record no longer matches a source."""
    copy = tmp_path / "connector"
    shutil.copytree(native.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "*.so", "native-build.json"))
    rules = copy / "normalize" / "rules.py"
    (copy / "normalize" / ("rules" + EXTENSION_SUFFIXES[0])).write_bytes(b"not an extension")
    (copy / "native-build.json").write_text(json.dumps({
        "toolchain": native.toolchain(),
        "sources": {"connector.normalize.rules": "0" * 64}}))
    run = subprocess.run([sys.executable, "-c", "import connector.normalize.rules"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path), "NATIVE_CORE": ""})
    assert run.returncode != 0
    assert "StaleNativeBuild: native core is stale: connector.normalize.rules changed" \
        in run.stderr, run.stderr
    ok = subprocess.run([sys.executable, "-c", "import connector.normalize.rules as r; "
                         "print(r.__file__)"], capture_output=True, text=True, cwd=tmp_path,
                        env={**os.environ, "PYTHONPATH": str(tmp_path), "NATIVE_CORE": "0"})
    assert ok.returncode == 0 and ok.stdout.strip() == str(rules), ok.stderr


@pytest.mark.skipif(os.environ.get("EXPECT_NATIVE_CORE") != "1" or native.running_interpreted(),
                    reason="set by `make test` unless NATIVE_CORE=0")
def test_the_native_core_under_test_is_the_compiled_one() -> None:
    """So a build that silently failed cannot pass for one (CI tests what ships)."""
    assert native.status().compiled == native.MODULES
    assert all(_is_extension(module) for module in native.MODULES)


def test_the_interpreted_run_imports_the_sources() -> None:
    """Under NATIVE_CORE=0 (`-p tests.interpreted`) the modules under test are the .py files,
    else built ones where they are built."""
    interpreted = native.running_interpreted() or not native.status().compiled
    assert not any(_is_extension(module) for module in native.MODULES) if interpreted else \
        all(_is_extension(module) for module in native.MODULES)


def _is_extension(module: str) -> bool:
    loaded = sys.modules.get(module) or importlib.import_module(module)
    return not str(loaded.__file__).endswith(".py")


def test_check_config_says_how_the_native_core_runs() -> None:
    result = CliRunner().invoke(check_config_command, ["--skip-kafka"], env={})
    assert result.exit_code == 0, result.output
    assert native.status().describe() in result.output.splitlines()


def test_a_commands_avro_datum_copies_its_maps() -> None:
    """Compiled, a dataclass field's type is the class, not a string: maps are copied alike."""
    attendance = Attendance("REGISTERED", None, "a@example.com", 1, {"firstname": "Ada"})
    upsert = EventUpsert("Launch", "Team", "WEBINAR", customProperties={"k": "v"})
    for body, name in ((attendance, "contactProperties"), (upsert, "customProperties")):
        datum = Command("w-1", "acc", body).to_avro()["command"][1]
        assert datum[name] == getattr(body, name)
        assert datum[name] is not getattr(body, name)
