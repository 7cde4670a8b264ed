"""The native core: the normalizer's per-record modules compiled to C by mypyc.

`scripts/build_native.py` compiles the modules in `MODULES` (plain, typed Python; mypyc is part of
mypy) into extension modules next to their sources. Python imports an extension in preference to
the .py beside it, so the same source runs compiled where it was built and interpreted anywhere
else, with the same behaviour (the tests run on the compiled build).

The danger is a source edited after its build: the extension, not the edit, would run. The build
records each source's digest and the interpreter's ABI, and `status()` compares them; importing
the package (`connector/__init__.py`) raises StaleNativeBuild, saying how to mend it, before any
extension is loaded. NATIVE_CORE=0 runs the sources instead, built or not. Kept free of imports
from the rest of the package, which imports it first.

Some sources are themselves build outputs (`GENERATED`, not in git): the build writes them before
compiling them, and `make setup`, the Dockerfile and the wheel build run it. A generated source
that is missing where its extension is built is refused like a stale one; where nothing is built
the connector runs without it (its code is generated and exec'd at run time instead, slower), and
`status()` says how to generate it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent

#: Compiled together, as one group (calls between them are C calls). The per-record path of the
#: normalizer: decoding (precompiled Avro readers/writers), rules, state, commands, changelog.
MODULES = (
    "connector.serde.precompiled",
    "connector.normalize.rules",
    "connector.normalize.person",
    "connector.normalize.event",
    "connector.runtime.table",
    "connector.normalize.command",
    "connector.normalize.held",
    "connector.runtime.changelog",
    "connector.normalize.normalizer",
    "connector.runtime.normalizer_state",
    "connector.runtime.normalizer_records",
    "connector.runtime.normalizer_commit",
    "connector.runtime.normalizer_rebalance",
    "connector.runtime.normalizer",
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
                "or NATIVE_CORE=0 to run the sources interpreted")

#: Sources of MODULES that the build generates (connector.serde.compiled's precompiled codecs).
GENERATED = ("connector.serde.precompiled",)

GENERATE_HINT = ("run `.venv/bin/python scripts/build_native.py --generate` (or `make setup`) to "
                 "generate it")

#: Set to 0, the sources are imported even where extensions are built (see `run_interpreted`).
SWITCH = "NATIVE_CORE"


@dataclass(frozen=True)
class NativeStatus:
    """Which of `MODULES` run compiled, which interpreted, and what is wrong with the build."""

    compiled: tuple[str, ...]
    interpreted: tuple[str, ...]
    #: Compiled modules whose source changed after the build.
    stale: tuple[str, ...] = ()
    #: Built extensions of modules no longer in MODULES (they would still shadow their source).
    strays: tuple[str, ...] = ()
    #: The toolchain the build was made for, when it is not this one.
    built_for: str | None = None
    #: `run_interpreted` is in effect: the sources run, whatever is built.
    forced: bool = False
    #: Modules whose source is absent, such as a generated one not generated yet (stale as well
    #: if its extension is built).
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.stale or self.strays or self.built_for)

    def describe(self) -> str:
        return self._describe() + self._not_generated()

    def _not_generated(self) -> str:
        absent = [module for module in self.missing
                  if module in GENERATED and module not in self.stale]
        if not absent:
            return ""
        return f"; {', '.join(absent)} not generated (its code runs exec'd, slower): " + \
            GENERATE_HINT

    def _describe(self) -> str:
        if self.forced:
            return "native core: its sources, interpreted (NATIVE_CORE=0)"
        if self.built_for:
            return (f"native core was built for {self.built_for}, this is {toolchain()}; "
                    + REBUILD_HINT)
        if self.stale or self.strays:
            edited = [module for module in self.stale if module not in self.missing]
            gone = [module for module in self.stale if module in self.missing]
            changed = [f"{', '.join(edited)} changed after the build"] if edited else []
            changed += [f"{', '.join(gone)} built but the source is missing"
                        + (" (generated by the build)" if set(gone) & set(GENERATED) else "")
                        ] if gone else []
            changed += [f"{', '.join(self.strays)} built but no longer compiled"] \
                if self.strays else []
            return f"native core is stale: {'; '.join(changed)}; " + REBUILD_HINT
        if not self.compiled:
            return "native core: interpreted (not built; scripts/build_native.py compiles it)"
        if self.interpreted:
            return (f"native core: {len(self.compiled)} of {len(MODULES)} modules compiled; "
                    f"interpreted: {', '.join(self.interpreted)}")
        return f"native core: compiled ({len(self.compiled)} modules, mypyc)"


class StaleNativeBuild(ImportError):
    """A built extension no longer matches its source (or this Python)."""


def source_path(module: str) -> Path:
    return PACKAGE_DIR.joinpath(*module.split(".")[1:]).with_suffix(".py")


def extension_paths(module: str) -> list[Path]:
    """The module's built extensions, if any (what Python would import instead of the .py)."""
    source = source_path(module)
    return [path for suffix in EXTENSION_SUFFIXES
            if (path := source.with_name(source.stem + suffix)).exists()]


def built_files() -> list[Path]:
    """Every extension in the package: the modules', the group's shared library, and any left
    by an earlier MODULES."""
    return sorted({path for suffix in EXTENSION_SUFFIXES
                   for path in PACKAGE_DIR.rglob(f"*{suffix}")})


def _module_of(extension: Path) -> str:
    relative = extension.relative_to(PACKAGE_DIR)
    return ".".join(["connector", *relative.parts[:-1], relative.name.split(".")[0]])


def source_digests() -> dict[str, str | None]:
    """Each module's source digest; None for a source that is missing (a generated one not yet
    generated)."""
    return {module: _digest(source_path(module)) for module in MODULES}


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def missing_sources() -> tuple[str, ...]:
    return tuple(module for module in MODULES if not source_path(module).exists())


def toolchain() -> str:
    """What a build is bound to besides its sources: the interpreter's ABI (a patch release of
    the same Python runs the same extensions)."""
    return f"{sys.implementation.cache_tag} {EXTENSION_SUFFIXES[0]}"


def build_record() -> dict[str, Any]:
    try:
        record = json.loads(BUILD_RECORD.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def status(*, as_built: bool = False) -> NativeStatus:
    """What runs; `as_built`: what would run without NATIVE_CORE=0 (the build's own view)."""
    if running_interpreted() and not as_built:
        return NativeStatus((), MODULES, forced=True, missing=missing_sources())
    record = build_record()
    recorded: dict[str, str] = record.get("sources", {})
    current = source_digests()
    compiled, interpreted, stale = [], [], []
    for module in MODULES:
        if not extension_paths(module):
            interpreted.append(module)
        elif current[module] is None or recorded.get(module) != current[module]:
            stale.append(module)
        else:
            compiled.append(module)
    shared = _module_of(source_path(GROUP)) + "__mypyc"
    strays = tuple(sorted({name for path in built_files()
                           if (name := _module_of(path)) not in MODULES and name != shared}))
    built_for = record.get("toolchain") if compiled or stale else None
    return NativeStatus(tuple(compiled), tuple(interpreted), tuple(stale), strays,
                        built_for if built_for != toolchain() else None,
                        missing=tuple(m for m in MODULES if current[m] is None))


def ensure_current() -> NativeStatus:
    """The status, or StaleNativeBuild when a built extension would run code its source no
    longer has (or was built for another Python)."""
    current = status()
    if not current.ok:
        raise StaleNativeBuild(current.describe())
    return current


def on_package_import() -> None:
    """Run by `connector/__init__.py`, before anything imports a native module: NATIVE_CORE=0
    imports the sources; otherwise a stale build is refused here, whoever imports the package
    (the `connector` command, the tests, the benches)."""
    if os.environ.get(SWITCH) == "0":
        run_interpreted()
    elif not running_interpreted():
        ensure_current()


class _SourcesFirst(MetaPathFinder):
    """Finds the native modules' .py sources ahead of their extensions."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname not in MODULES:
            return None
        source = source_path(fullname)
        if not source.exists():  # never its extension instead: that is what NATIVE_CORE=0 avoids
            hint = f"; {GENERATE_HINT}" if fullname in GENERATED else ""
            raise ModuleNotFoundError(f"No module named {fullname!r}: {source} is missing{hint}",
                                      name=fullname)
        return importlib.util.spec_from_file_location(fullname, source)


def run_interpreted() -> None:
    """From now on, import the native modules from their sources even where they are built
    (NATIVE_CORE=0 does this on import of the package; `make test` runs the unit tests so, and
    the build script imports the sources so). Call before any of them is imported."""
    loaded = [module for module in MODULES
              if not str(getattr(sys.modules.get(module), "__file__", ".py")).endswith(".py")]
    if loaded:
        raise RuntimeError(f"already imported compiled: {', '.join(loaded)}")
    if not running_interpreted():
        sys.meta_path.insert(0, _SourcesFirst())


def running_interpreted() -> bool:
    """True when `run_interpreted` is in effect."""
    return any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path)
