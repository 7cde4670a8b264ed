"""The package's build backend: setuptools', after writing the native core's generated sources.

connector/serde/precompiled.py is a build output (connector.native.GENERATED, ignored by git):
`make setup` and the Dockerfile write it with scripts/build_native.py before anything is built.
A wheel or sdist built straight from a clone (`pip wheel .`, `python -m build`) would lack it, so
this backend writes it first when it is missing. The generator reads the schemas through the
connector's own schema catalog, so for that build the project's dependencies are build
requirements too. Editable installs (`make setup`) leave it to scripts/build_native.py.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the hooks this module does not wrap)

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "connector" / "serde" / "precompiled.py"
GENERATOR = ROOT / "scripts" / "build_native.py"


def _needs_generating() -> bool:
    return not GENERATED.exists()


def _generator_requires() -> list[str]:
    if not _needs_generating():
        return []
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def _generate() -> None:
    if _needs_generating():
        subprocess.run([sys.executable, str(GENERATOR), "--generate"], check=True, cwd=ROOT)


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_wheel(config_settings), *_generator_requires()]


def get_requires_for_build_sdist(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [*_setuptools.get_requires_for_build_sdist(config_settings), *_generator_requires()]


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    _generate()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    _generate()
    return _setuptools.build_sdist(sdist_directory, config_settings)
