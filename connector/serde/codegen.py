"""The code generator shared by the Avro reader and writer compilers (connector.serde.compiled).

A compiler walks a fastavro-parsed schema and emits the lines of one Python function: `Compiler`
keeps the names, constants and indentation; codegen_reader and codegen_writer emit the reading
and writing code. `digest` identifies the generated code, so a precompiled function is only ever
used for exactly the code it was generated from.
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import Any

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class Unsupported(Exception):
    """The schema uses something the compiler leaves to fastavro."""


class GiveUp(Exception):
    """Raised by generated code: this value is for fastavro to read or write."""


_HELPERS: dict[str, Any] = {
    "GiveUp": GiveUp,
    "_F": struct.Struct("<f"), "_D": struct.Struct("<d"),
}


#: Generated variables the typed module declares (v: values, k: union branch names, e: encoded
#: strings, n/i: lengths, counts and enum indexes).
_VARIABLE = re.compile(r"\b([vkeni]\d+)\b")


class Compiler:
    """Shared by the reader and writer generators: names, constants, indentation."""

    def __init__(self, parsed: Any, constants: str = "_c"):
        self.named: dict[str, Any] = dict(parsed.get("__named_schemas", {})) \
            if isinstance(parsed, dict) else {}
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._counter = 0
        self._constants = constants  # the prefix of the constants' names
        self._stack: list[str] = []

    def var(self, prefix: str = "v") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def const(self, value: Any) -> str:
        name = self.var(self._constants)
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def resolve(self, schema: Any) -> Any:
        """A named reference replaced by its definition; primitives as their name."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            if schema not in self.named:
                raise Unsupported(f"unknown named type {schema}")
            return self.named[schema]
        if isinstance(schema, dict):
            if "logicalType" in schema:
                raise Unsupported("logical types are converted by fastavro")
            kind = schema.get("type")
            if isinstance(kind, str) and kind in PRIMITIVES:
                return kind
            if kind in ("record", "error", "enum", "fixed") and schema.get("name"):
                self.named.setdefault(schema["name"], schema)
        return schema

    def enter(self, name: str) -> None:
        if name in self._stack:
            raise Unsupported(f"recursive type {name}")
        self._stack.append(name)

    def leave(self) -> None:
        self._stack.pop()

    def digest(self, kind: str) -> str:
        """Identity of the generated code: its lines and the values of its constants."""
        content = "\n".join([kind, *self.lines, repr(sorted(self.consts.items()))])
        return hashlib.sha256(content.encode()).hexdigest()[:32]

    def declarations(self, typed: bool) -> str:
        """Variable annotations for mypyc: ints where the code only ever holds ints (so the
        varint arithmetic runs on C integers), Any for values."""
        if not typed:
            return ""
        names = sorted(set(_VARIABLE.findall("\n".join(self.lines))),
                       key=lambda name: (name[0], int(name[1:])))
        return "".join(f"    {name}: {'int' if name[0] in 'ni' else 'Any'}\n" for name in names)

    def module_constants(self) -> str:
        """The constants as module globals (their names are unique to this compiler's prefix)."""
        return "".join(f"{name} = {value!r}\n" for name, value in self.consts.items())

    def build(self, name: str, source: str) -> Any:
        namespace = {**_HELPERS, **self.consts}
        exec(compile(source, f"<avro {name}>", "exec"), namespace)
        return namespace[name]


def kind_of(schema: Any) -> str:
    return schema if isinstance(schema, str) else (
        "union" if isinstance(schema, list) else str(schema.get("type")))
