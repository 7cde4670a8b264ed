"""The native core: the normalizer's per-record modules compiled to C by mypyc.

`scripts/build_native.py` compiles the modules in `MODULES` (plain, typed Python; mypyc is part of
mypy) into extension modules next to their sources. Python imports an extension in preference to
the .py beside it, so the same source runs compiled where it was built and interpreted anywhere
else, with the same behaviour (the tests run on the compiled build).

The danger is a source edited after its build: the extension, not the edit, would run. The build
records each source's digest, and `status()` compares them; `connector` and the tests refuse to
start on a stale build and say how to mend it. Kept free of imports from the rest of the package:
the build script loads it before anything is compiled.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent

#: Compiled together, as one group (calls between them are C calls). The per-record path of the
#: normalizer: decoding (precompiled Avro readers/writers), rules, state, commands, changelog.
MODULES = (
    "connector.serde.precompiled",
    "connector.normalize.rules",
    "connector.normalize.person",
    "connector.normalize.event",
    "connector.normalize.table",
    "connector.normalize.command",
    "connector.normalize.changelog",
    "connector.normalize.normalizer",
    "connector.normalize.worker",
    "connector.serde.record",
    "connector.serde.codec",
    "connector.serde.topic",
)

#: The group's shared library is `connector/native__mypyc.<suffix>` (inside the package, so an
#: editable install finds it too).
GROUP = "connector.native"

#: Written by the build: the digest of every compiled source, and the toolchain.
BUILD_RECORD = PACKAGE_DIR / "native-build.json"

REBUILD_HINT = ("run `.venv/bin/python scripts/build_native.py` (or `make setup`) to rebuild it, "
                "or `scripts/build_native.py --clean` to run interpreted")


@dataclass(frozen=True)
class NativeStatus:
    """Which of `MODULES` run compiled, which interpreted, and which are stale."""

    compiled: tuple[str, ...]
    interpreted: tuple[str, ...]
    stale: tuple[str, ...]

    def describe(self) -> str:
        if self.stale:
            return (f"native core is stale: {', '.join(self.stale)} changed after the build; "
                    + REBUILD_HINT)
        if not self.compiled:
            return "native core: interpreted (not built; scripts/build_native.py compiles it)"
        if self.interpreted:
            return (f"native core: {len(self.compiled)} of {len(MODULES)} modules compiled; "
                    f"interpreted: {', '.join(self.interpreted)}")
        return f"native core: compiled ({len(self.compiled)} modules, mypyc)"


class StaleNativeBuild(RuntimeError):
    """A compiled module no longer matches its source."""


def source_path(module: str) -> Path:
    return PACKAGE_DIR.joinpath(*module.split(".")[1:]).with_suffix(".py")


def extension_paths(module: str) -> list[Path]:
    """The module's built extensions, if any (what Python would import instead of the .py)."""
    source = source_path(module)
    return [path for suffix in EXTENSION_SUFFIXES
            if (path := source.with_name(source.stem + suffix)).exists()]


def source_digests() -> dict[str, str]:
    return {module: hashlib.sha256(source_path(module).read_bytes()).hexdigest()
            for module in MODULES}


def toolchain() -> str:
    """What the build depends on besides the sources: the Python it was built for."""
    return f"{sys.implementation.cache_tag} {sys.version.split()[0]}"


def recorded_digests() -> dict[str, str]:
    try:
        record = json.loads(BUILD_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if record.get("toolchain") != toolchain():
        return {}
    digests: dict[str, str] = record.get("sources", {})
    return digests


def status() -> NativeStatus:
    recorded = recorded_digests()
    current = source_digests()
    compiled, interpreted, stale = [], [], []
    for module in MODULES:
        if not extension_paths(module):
            interpreted.append(module)
        elif recorded.get(module) != current[module]:
            stale.append(module)
        else:
            compiled.append(module)
    return NativeStatus(tuple(compiled), tuple(interpreted), tuple(stale))


def ensure_current() -> NativeStatus:
    """The status, or StaleNativeBuild when a compiled module would run code its source no
    longer has."""
    current = status()
    if current.stale:
        raise StaleNativeBuild(current.describe())
    return current


class _SourcesFirst(MetaPathFinder):
    """Finds the native modules' .py sources ahead of their extensions."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def run_interpreted() -> None:
    """From now on, import the native modules from their sources even where they are built, so
    the interpreted code can be tested in the same tree (`make test` runs the unit tests twice).
    Call before any of them is imported."""
    loaded = [module for module in MODULES if module in sys.modules]
    if loaded:
        raise RuntimeError(f"already imported compiled: {', '.join(loaded)}")
    if not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())


def running_interpreted() -> bool:
    """True when `run_interpreted` is in effect."""
    return any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path)
