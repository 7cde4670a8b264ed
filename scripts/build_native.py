"""Compile the connector's native core with mypyc (see connector/native.py); a no-op when current.

    .venv/bin/python scripts/build_native.py               build if any source changed
    .venv/bin/python scripts/build_native.py --force       build anyway
    .venv/bin/python scripts/build_native.py --generate    only write the generated sources
    .venv/bin/python scripts/build_native.py --clean       remove the build: run interpreted
    .venv/bin/python scripts/build_native.py --check       exit 1 if a generated source is
                                                           missing or out of date (changes nothing)

First writes the generated sources (connector.native.GENERATED): connector/serde/precompiled.py,
the Avro readers and writers of schemas/ as typed functions, rewritten when the schemas or the
generator changed. It is a build output like the extensions (ignored by git). `scripts/bootstrap`
runs this on every `make setup`; NATIVE_CORE=0 there only generates (and cleans), to run all
interpreted. The Dockerfile runs it before building the wheel, and the wheel build
(scripts/build_backend.py) generates the sources when they are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The sources, whatever is built: a stale or broken build must not stop its own rebuild.
os.environ["NATIVE_CORE"] = "0"

from connector import native  # noqa: E402  (the repository's, not an installed copy)
from connector.serde.catalog import SchemaCatalog  # noqa: E402
from connector.serde.compiled import PRECOMPILED_MODULE, precompiled_module  # noqa: E402

BUILD_TEMP = ROOT / ".cache" / "native-build"
ORIGIN = "scripts/build_native.py"


def precompiled_source() -> str:
    """What the precompiled codec module holds for the current schemas and generator."""
    entries = SchemaCatalog.from_directory().entries()
    return precompiled_module([entry.parsed for entry in entries], ORIGIN)


def precompiled_is_current() -> bool:
    path = native.source_path(PRECOMPILED_MODULE)
    return path.exists() and path.read_text(encoding="utf-8") == precompiled_source()


def regenerate_precompiled() -> bool:
    """Write the precompiled codec module if it is missing or its content changed; True when it
    did."""
    if precompiled_is_current():
        return False
    native.source_path(PRECOMPILED_MODULE).write_text(precompiled_source(), encoding="utf-8")
    return True


def compiler() -> str:
    """The mypyc that compiles: another version is another build."""
    return f"mypy {metadata.version('mypy')}"


def clean() -> None:
    for path in native.built_files():
        path.unlink()
    native.BUILD_RECORD.unlink(missing_ok=True)
    shutil.rmtree(BUILD_TEMP, ignore_errors=True)


def compile_modules() -> None:
    # Imported here: only a build needs them (mypy ships mypyc; setuptools drives the compiler).
    from mypyc.build import mypycify
    from setuptools import setup

    paths = [str(native.source_path(module).relative_to(ROOT)) for module in native.MODULES]
    os.chdir(ROOT)
    extensions = mypycify(paths, opt_level="3", group_name=native.GROUP,
                          target_dir=str(BUILD_TEMP / "c"))
    setup(name="connector-native", ext_modules=extensions, script_args=[
        "--quiet", "build_ext", "--inplace", "--build-temp", str(BUILD_TEMP / "temp"),
        "--build-lib", str(BUILD_TEMP / "lib")])


def build(force: bool) -> int:
    """Compile MODULES unless the build is current (and made by this compiler)."""
    current = native.status(as_built=True)
    if not force and current.ok and not current.interpreted and \
            native.build_record().get("compiler") == compiler():
        print(current.describe())
        return 0
    started = time.monotonic()
    print(f"native core: compiling {len(native.MODULES)} modules with mypyc (about a minute)")
    digests = native.source_digests()  # of what is compiled, read before the compiler reads it
    clean()
    try:
        compile_modules()
    except (Exception, SystemExit) as exc:  # mypyc and distutils report by exiting
        clean()  # nothing half-built may shadow a source
        print(f"native core: the build failed ({exc!r}; the compiler's output is above). "
              "NATIVE_CORE=0 make ... runs everything interpreted meanwhile.", file=sys.stderr)
        return 1
    record = {"toolchain": native.toolchain(), "compiler": compiler(), "sources": digests}
    native.BUILD_RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    after = native.status(as_built=True)
    print(f"{after.describe()} in {time.monotonic() - started:.0f}s")
    return 0 if after.ok and not after.interpreted else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="build even if current")
    parser.add_argument("--clean", action="store_true",
                        help="remove the build (with --generate: then generate) and stop")
    parser.add_argument("--generate", action="store_true",
                        help="write the generated sources only, compile nothing")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a generated source is missing or out of date")
    args = parser.parse_args()
    generated = native.source_path(PRECOMPILED_MODULE).relative_to(ROOT)
    if args.check:
        if precompiled_is_current():
            print(f"native core: {generated} is current")
            return 0
        print(f"native core: {generated} is missing or out of date; "
              f"{native.GENERATE_HINT}", file=sys.stderr)
        return 1
    if args.clean:
        clean()
        print("native core: removed; the connector runs interpreted")
    if args.generate or not args.clean:
        if regenerate_precompiled():
            print(f"native core: generated {generated}")
        elif args.generate:
            print(f"native core: {generated} is current")
    if args.clean or args.generate:
        return 0
    return build(args.force)


if __name__ == "__main__":
    sys.exit(main())
