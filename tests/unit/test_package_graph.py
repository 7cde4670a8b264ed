"""The allowed dependencies between the connector's packages, checked on the source (``ast``).

Each top-level package or module of ``connector`` (``connector.sink.worker`` belongs to ``sink``,
``connector.errors`` to ``errors``) sits in one layer of :data:`LAYERS`. A module may import
from its own package, from the base layer, and from any package of a *lower* layer; never from
a higher layer, and never from a sibling of its own layer (siblings are independent). Imports
inside functions and under ``if TYPE_CHECKING:`` count: a cycle hidden from the interpreter is
still a cycle.

Three more rules:

* no private name crosses modules: ``from x import _y`` (dunders such as ``__version__`` aside),
  in ``connector/``, ``tests/`` and ``bench/``; a name used elsewhere is public;
* only ``connector.kafka`` (and the ``connector.broker`` test fixture) imports ``confluent_kafka``;
* ``connector.normalize`` is the pure rules and state: it imports nothing that does I/O.

A failure names the importing module, the line, the import and the rule it breaks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Lowest first. The base layer's modules may import each other; the siblings of every other
#: layer may not.
LAYERS: tuple[tuple[str, ...], ...] = (
    # base: the package root (version, native-core check) and dependency-free helpers
    ("connector", "errors", "clock", "native", "stopping", "redact", "asgi_server"),
    # leaves: the Kafka clients; synthetic input and its oracle; the HubSpot fake
    ("kafka", "sample", "sandbox"),
    # Avro formats (a schema registry is reached through kafka); telemetry (lag reads Kafka);
    # the embedded broker
    ("serde", "telemetry", "broker"),
    # the pure attendance rules; the HubSpot client (it may be traced, never the reverse)
    ("normalize", "hubspot"),
    # every settings section together
    ("config",),
    ("dlq", "installs"),
    ("sink",),
    # the Kafka drivers: workers assembled from their collaborators
    ("runtime",),
    # replay, the HTTP side, chaos runs
    ("replay", "serve", "chaos"),
    # the demo: the pipeline, and serve's install flow driven as customers' browsers drive it
    ("demo",),
    ("cli",),
    ("__main__",),
)

#: Third-party modules that only these connector packages may import.
CONFINED: dict[str, frozenset[str]] = {
    "confluent_kafka": frozenset({"kafka", "broker"}),
}

#: Packages that must stay free of I/O, and the modules (connector's or not) they may not use.
PURE: dict[str, frozenset[str]] = {
    "normalize": frozenset({"confluent_kafka", "httpx", "socket", "connector.kafka"}),
}


@dataclass(frozen=True)
class Import:
    """One imported module (``names``: what a ``from`` import takes from it)."""

    importer: str
    path: Path
    line: int
    target: str
    names: tuple[str, ...]

    def where(self) -> str:
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.importer} line {self.line} imports {self.target}{names}"


def module_name(path: Path, root: Path) -> str:
    """``root/connector/sink/worker.py`` -> ``connector.sink.worker`` (a package: its name)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import in the file, anywhere in it, relative ones resolved."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, path, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield Import(module, path, node.lineno, target,
                         tuple(alias.name for alias in node.names))


def unit_of(module: str) -> str:
    """The package or top-level module of ``connector`` that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_units(imp: Import, root: Path) -> set[str]:
    """The connector packages an import reaches (``from connector import native``: native)."""
    if imp.target != "connector":
        return {unit_of(imp.target)}
    package = root / "connector"
    units = {name for name in imp.names
             if (package / name).is_dir() or (package / f"{name}.py").is_file()}
    return units | ({"connector"} if len(units) < len(imp.names) else set())


def source_files(root: Path, *folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((root / folder).rglob("*.py"))


def layer_violations(root: Path, layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """Imports between connector's packages that the layers do not allow."""
    layer_of = {unit: n for n, layer in enumerate(layers) for unit in layer}
    problems = []
    for path in source_files(root, "connector"):
        for imp in imports_of(path, root):
            if imp.target.partition(".")[0] != "connector":
                continue
            source = unit_of(imp.importer)
            for target in sorted(imported_units(imp, root)):
                problem = _layer_rule(source, target, layer_of, layers)
                if problem:
                    problems.append(f"{imp.where()}: {problem}")
    return problems


def _layer_rule(source: str, target: str, layer_of: dict[str, int],
                layers: tuple[tuple[str, ...], ...]) -> str | None:
    for unit in (source, target):
        if unit not in layer_of:
            return f"connector.{unit} is in no layer: add it to LAYERS in {Path(__file__).name}"
    if source == target:
        return None
    mine, theirs = layer_of[source], layer_of[target]
    if theirs > mine:
        return (f"upward import: {source} (layer {mine}) may not import {target} "
                f"(layer {theirs}, higher)")
    if theirs == mine and mine != 0:
        return (f"sibling import: {source} and {target} share layer {mine} "
                f"{layers[mine]} and are independent")
    return None


def private_violations(root: Path, folders: Iterable[str] = ("connector", "tests", "bench")
                       ) -> list[str]:
    """``from x import _y`` anywhere: a private name used outside its module."""
    problems = []
    for path in source_files(root, *folders):
        for imp in imports_of(path, root):
            private = [n for n in imp.names
                       if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
            if private:
                problems.append(f"{imp.where()}: private name {', '.join(private)} used outside "
                                f"its module (make it public, or keep the use inside)")
    return problems


def confinement_violations(root: Path) -> list[str]:
    """Third-party modules imported outside the packages allowed to (:data:`CONFINED`), and
    I/O in pure packages (:data:`PURE`)."""
    problems = []
    for path in source_files(root, "connector"):
        for imp in imports_of(path, root):
            unit = unit_of(imp.importer)
            top = imp.target.partition(".")[0]
            owners = CONFINED.get(top)
            if owners is not None and unit not in owners:
                problems.append(f"{imp.where()}: only {', '.join(sorted(owners))} may import "
                                f"{top}")
            for banned in sorted(PURE.get(unit, ())):
                if imp.target == banned or imp.target.startswith(banned + "."):
                    problems.append(f"{imp.where()}: {unit} is pure, it may not use {banned}")
    return problems


def _report(problems: list[str]) -> str:
    return f"{len(problems)} import(s) break the package graph:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- the real tree


def test_every_package_is_in_a_layer() -> None:
    package = REPO / "connector"
    units = {p.stem if p.is_file() else p.name for p in package.iterdir()
             if (p.is_file() and p.suffix == ".py" and p.name != "__init__.py")
             or (p.is_dir() and (p / "__init__.py").is_file())}
    layered = {unit for layer in LAYERS for unit in layer} - {"connector"}
    assert units - layered == set(), f"not in LAYERS: {sorted(units - layered)}"


def test_no_import_goes_up_a_layer_or_across_siblings() -> None:
    problems = layer_violations(REPO)
    assert not problems, _report(problems)


def test_no_private_name_crosses_modules() -> None:
    problems = private_violations(REPO)
    assert not problems, _report(problems)


def test_kafka_client_and_io_stay_where_they_belong() -> None:
    problems = confinement_violations(REPO)
    assert not problems, _report(problems)


# --------------------------------------------------------------------------- the check itself


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_check_finds_each_kind_of_violation(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "connector/__init__.py": "from connector import errors\n",
        "connector/errors.py": "",
        "connector/serde/__init__.py": "",
        "connector/serde/topic.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from connector.config import Settings\n"),
        "connector/telemetry/__init__.py": "",
        "connector/telemetry/http.py": "def f():\n    from ..hubspot.redact import mask\n",
        "connector/hubspot/__init__.py": "",
        "connector/hubspot/redact.py": "from connector.errors import ConnectorError\n",
        "connector/config.py": ("from connector.serde.topic import x\n"
                                "from connector import errors\n"),
        "connector/serve/__init__.py": "",
        "connector/serve/metrics.py": "from connector.serve.app import _Mounted, __all__\n",
        "connector/normalize/__init__.py": "",
        "connector/normalize/rules.py": ("import confluent_kafka\n"
                                         "from connector.kafka import read\n"),
        "connector/kafka/__init__.py": "from confluent_kafka import Consumer\n",
        "connector/extra/__init__.py": "import connector.errors\n",
    })
    layers = (("connector", "errors"), ("kafka",), ("serde", "telemetry", "hubspot"),
              ("normalize",), ("config",), ("serve",))

    assert layer_violations(root, layers) == [
        "connector.extra line 1 imports connector.errors: connector.extra is in no layer: add it "
        "to LAYERS in test_package_graph.py",
        "connector.serde.topic line 3 imports connector.config (Settings): upward import: serde "
        "(layer 2) may not import config (layer 4, higher)",
        "connector.telemetry.http line 2 imports connector.hubspot.redact (mask): sibling "
        "import: telemetry and hubspot share layer 2 ('serde', 'telemetry', 'hubspot') and are "
        "independent",
    ]  # downward imports (config -> serde) and imports within the base are fine

    private = private_violations(root, ("connector",))
    assert private == ["connector.serve.metrics line 1 imports connector.serve.app "
                       "(_Mounted, __all__): private name _Mounted used outside its module "
                       "(make it public, or keep the use inside)"]

    confined = confinement_violations(root)
    assert confined == [
        "connector.normalize.rules line 1 imports confluent_kafka: only broker, kafka may "
        "import confluent_kafka",
        "connector.normalize.rules line 1 imports confluent_kafka: normalize is pure, it may "
        "not use confluent_kafka",
        "connector.normalize.rules line 2 imports connector.kafka (read): normalize is pure, "
        "it may not use connector.kafka",
    ]


def test_the_real_layers_forbid_the_cycles_they_were_made_for(tmp_path: Path) -> None:
    """config <-> serde, telemetry -> hubspot, chaos -> cli, sandbox -> sample."""
    root = _tree(tmp_path, {
        "connector/serde/topic.py": "from connector.config import Settings\n",
        "connector/telemetry/http.py": "from connector.hubspot.client import DEFAULT_LIMITS\n",
        "connector/chaos/driver.py": "from connector.cli.demo import hubspot_view\n",
        "connector/sandbox/view.py": "from connector.sample.oracle import Expected\n",
    })
    found = layer_violations(root)
    assert all(" upward import: " in line or " sibling import: " in line for line in found)
    assert [line.partition(":")[0] for line in found] == [
        "connector.chaos.driver line 1 imports connector.cli.demo (hubspot_view)",
        "connector.sandbox.view line 1 imports connector.sample.oracle (Expected)",
        "connector.serde.topic line 1 imports connector.config (Settings)",
        "connector.telemetry.http line 1 imports connector.hubspot.client (DEFAULT_LIMITS)",
    ]
