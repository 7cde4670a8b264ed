"""Avro readers and writers compiled to Python for one schema: the fast path of every codec.

fastavro interprets the schema for every value (~6 µs to read a platform activity, ~8 µs to write
a command); a function generated once per schema, with every field unrolled, does the same work
in well under half of that. It is a *fast path* only, never a second opinion:

- the reader accepts just the well-formed values of the schema (no resolution to another reader
  schema); on anything else (truncated, malformed, trailing bytes, an over-long varint) it gives up
  and the codec decodes the value again with fastavro, so failures are classified exactly as
  before;
- the writer accepts just values of the exact Python types the schema calls for (``int`` for
  long, ``str`` for string, ``dict`` for records and maps, ``(full name, dict)`` for a record in
  a union); anything else is written by fastavro, which also raises its own errors.

Its output is byte-for-byte (writer) and value-for-value (reader) what fastavro gives; the unit
tests compare both on generated values. Schemas it cannot compile (recursive types, logical types
fastavro would convert, unions it cannot tell apart cheaply) get ``None`` and use fastavro alone.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import struct
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

Reader = Callable[[bytes, int], tuple[Any, int]]
"""``read(value, start) -> (datum, end)``; raises (anything) when fastavro must decide. The
caller must also hand the value to fastavro when ``end != len(value)``: a string that claims more
bytes than remain is not checked where it is read (see ``_ReaderCompiler.read``)."""

Writer = Callable[[Any], bytes]
"""``write(datum) -> body``; raises (anything) when fastavro must write it."""

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
#: Python type a writer accepts for each primitive (exact type, no subclass, no conversion).
_PY_TYPE = {"boolean": "bool", "int": "int", "long": "int", "float": "float", "double": "float",
            "bytes": "bytes", "string": "str"}


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


class _Compiler:
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
            if schema in _PRIMITIVES:
                return schema
            if schema not in self.named:
                raise Unsupported(f"unknown named type {schema}")
            return self.named[schema]
        if isinstance(schema, dict):
            if "logicalType" in schema:
                raise Unsupported("logical types are converted by fastavro")
            kind = schema.get("type")
            if isinstance(kind, str) and kind in _PRIMITIVES:
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


def _kind(schema: Any) -> str:
    return schema if isinstance(schema, str) else (
        "union" if isinstance(schema, list) else str(schema.get("type")))


# -- reading -------------------------------------------------------------------------------------


class _ReaderCompiler(_Compiler):

    def long(self, target: str, indent: int, *, first_byte_read: bool = False) -> None:
        """A zig-zag varint into `target`; the loop is inlined (timestamps take 6 bytes)."""
        if not first_byte_read:
            self.emit(indent, "n = b[p]; p += 1")
        self.emit(indent, "if n & 0x80:")
        self.emit(indent + 1, "n &= 0x7F; s = 7")
        self.emit(indent + 1, "while True:")
        self.emit(indent + 2, "c = b[p]; p += 1; n |= (c & 0x7F) << s")
        self.emit(indent + 2, "if c < 0x80: break")
        self.emit(indent + 2, "s += 7")
        self.emit(indent + 2, "if s > 63: raise GiveUp()")
        self.emit(indent + 1, "if n >> 64: raise GiveUp()")
        self.emit(indent, f"{target} = (n >> 1) ^ -(n & 1)")

    def length(self, target: str, indent: int) -> None:
        """A string's or bytes' length: one byte for anything under 64 (the usual case)."""
        self.emit(indent, "n = b[p]; p += 1")
        self.emit(indent, "if not n & 0x81:")
        self.emit(indent + 1, f"{target} = n >> 1")
        self.emit(indent, "else:")
        self.long(target, indent + 1, first_byte_read=True)
        self.emit(indent + 1, f"if {target} < 0: raise GiveUp()")

    def read(self, schema: Any, target: str, indent: int) -> None:
        schema = self.resolve(schema)
        kind = _kind(schema)
        if kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            self.emit(indent, "n = b[p]; p += 1")
            self.emit(indent, "if n > 1: raise GiveUp()")
            self.emit(indent, f"{target} = n == 1")
        elif kind in ("int", "long"):
            self.long(target, indent)
        elif kind in ("float", "double"):
            size, fmt = (4, "_F") if kind == "float" else (8, "_D")
            self.emit(indent, f"{target} = {fmt}.unpack_from(b, p)[0]; p += {size}")
        elif kind in ("string", "bytes"):
            # No bounds check: a slice past the end is short, p then passes the end, and the
            # next read (IndexError) or the caller's end == len(body) check hands it to fastavro.
            length = self.var("n")
            self.length(length, indent)
            decode = ".decode()" if kind == "string" else ""
            self.emit(indent, f"{target} = b[p:p + {length}]{decode}; p += {length}")
        elif kind == "fixed":
            size_ = int(schema["size"])
            self.emit(indent, f"if p + {size_} > size: raise GiveUp()")
            self.emit(indent, f"{target} = b[p:p + {size_}]; p += {size_}")
        elif kind == "enum":
            index = self.var("i")
            symbols = list(schema["symbols"])
            self.long(index, indent)
            self.emit(indent, f"if not 0 <= {index} < {len(symbols)}: raise GiveUp()")
            self.emit(indent, f"{target} = {self.const(tuple(symbols))}[{index}]")
        elif kind in ("record", "error"):
            self.record(schema, target, indent)
        elif kind == "union":
            self.union(schema, target, indent)
        elif kind in ("array", "map"):
            self.block(schema, kind, target, indent)
        else:
            raise Unsupported(f"type {kind}")

    def record(self, schema: dict[str, Any], target: str, indent: int) -> None:
        self.enter(schema["name"])
        values = []
        for field in schema["fields"]:
            value = self.var()
            self.read(field["type"], value, indent)
            values.append(f"{field['name']!r}: {value}")
        self.emit(indent, f"{target} = {{{', '.join(values)}}}")
        self.leave()

    def union(self, branches: list[Any], target: str, indent: int) -> None:
        if len(branches) > 63:
            raise Unsupported("a union of more than 63 types")
        self.emit(indent, "n = b[p]; p += 1")  # the index, one byte: zig-zag 2 * index
        for i, branch in enumerate(branches):
            self.emit(indent, f"{'if' if i == 0 else 'elif'} n == {i << 1}:")
            resolved = self.resolve(branch)
            if _kind(resolved) in ("record", "error"):  # return_record_name=True
                value = self.var()
                self.read(resolved, value, indent + 1)
                self.emit(indent + 1, f"{target} = ({resolved['name']!r}, {value})")
            else:
                self.read(resolved, target, indent + 1)
        self.emit(indent, "else: raise GiveUp()")

    def block(self, schema: dict[str, Any], kind: str, target: str, indent: int) -> None:
        count, skip = self.var("n"), self.var("n")
        self.emit(indent, f"{target} = {{}}" if kind == "map" else f"{target} = []")
        self.emit(indent, "while True:")
        self.long(count, indent + 1)
        self.emit(indent + 1, f"if {count} == 0: break")
        self.emit(indent + 1, f"if {count} < 0:")
        self.emit(indent + 2, f"{count} = -{count}")
        self.long(skip, indent + 2)
        self.emit(indent + 1, f"for _ in range({count}):")
        item = self.var()
        if kind == "map":
            key = self.var()
            self.read("string", key, indent + 2)
            self.read(schema["values"], item, indent + 2)
            self.emit(indent + 2, f"{target}[{key}] = {item}")
        else:
            self.read(schema["items"], item, indent + 2)
            self.emit(indent + 2, f"{target}.append({item})")


def compile_reader(parsed: Any) -> Reader | None:
    """A reader for values written with `parsed` (fastavro-parsed) read as themselves, or None."""
    reader: Reader | None = _function(_generate_reader(parsed), "read",
                                      _precompiled()[0], _reader_source)
    return reader


def _function(compiler: Any, kind: str, precompiled: dict[str, Any],
              render: Callable[[Any, str], str]) -> Any:
    """The precompiled function for the compiler's code if there is one, else that code exec'd
    (None when the compiler gave up)."""
    if compiler is None:
        return None
    return precompiled.get(compiler.digest(kind)) or compiler.build(kind, render(compiler, kind))


def _generate_reader(parsed: Any, constants: str = "_c") -> _ReaderCompiler | None:
    compiler = _ReaderCompiler(parsed, constants)
    try:
        compiler.read(parsed, "v0", 1)
    except Unsupported:
        return None
    return compiler


def _reader_source(compiler: _ReaderCompiler, name: str, *, typed: bool = False) -> str:
    head = f"def {name}(b: bytes, p: int) -> tuple[Any, int]:\n" if typed else \
        f"def {name}(b, p):\n"
    return head + compiler.declarations(typed) + "    size = len(b)\n" + \
        "\n".join(compiler.lines) + "\n    return v0, p\n"


# -- writing -------------------------------------------------------------------------------------


class _WriterCompiler(_Compiler):

    def long(self, value: str, indent: int, *, checked: bool = False) -> None:
        """The zig-zag varint appended in place (timestamps take 6 bytes: a helper function
        and its temporary buffer cost more than the loop)."""
        if not checked:
            self.emit(indent, f"if type({value}) is not int: raise GiveUp()")
        self.emit(indent, f"if 0 <= {value} < 64: o.append({value} << 1)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"if not {_LONG_MIN} <= {value} <= {_LONG_MAX}: raise GiveUp()")
        self.emit(indent + 1, f"z = ({value} << 1) ^ ({value} >> 63)")
        self.emit(indent + 1, "while z > 0x7F:")
        self.emit(indent + 2, "o.append((z & 0x7F) | 0x80); z >>= 7")
        self.emit(indent + 1, "o.append(z)")

    def write(self, schema: Any, value: str, indent: int) -> None:
        schema = self.resolve(schema)
        kind = _kind(schema)
        if kind == "null":
            self.emit(indent, f"if {value} is not None: raise GiveUp()")
        elif kind == "boolean":
            self.emit(indent, f"if type({value}) is not bool: raise GiveUp()")
            self.emit(indent, f"o.append(1 if {value} else 0)")
        elif kind == "int":
            self.emit(indent, f"if type({value}) is not int or not {_INT_MIN} <= {value} <= "
                              f"{_INT_MAX}: raise GiveUp()")
            self.long(value, indent, checked=True)
        elif kind == "long":
            self.long(value, indent)
        elif kind in ("float", "double"):
            fmt = "_F" if kind == "float" else "_D"
            self.emit(indent, f"if type({value}) is not float: raise GiveUp()")
            self.emit(indent, f"o += {fmt}.pack({value})")
        elif kind in ("string", "bytes"):
            data = self.var("e")
            self.emit(indent, f"if type({value}) is not {_PY_TYPE[kind]}: raise GiveUp()")
            self.emit(indent, f"{data} = {value}.encode()" if kind == "string" else
                      f"{data} = {value}")
            length = self.var("n")
            self.emit(indent, f"{length} = len({data})")
            self.long(length, indent, checked=True)
            self.emit(indent, f"o += {data}")
        elif kind == "fixed":
            self.emit(indent, f"if type({value}) is not bytes or len({value}) != "
                              f"{int(schema['size'])}: raise GiveUp()")
            self.emit(indent, f"o += {value}")
        elif kind == "enum":
            index = self.var("i")
            lookup = self.const({s: i for i, s in enumerate(schema["symbols"])})
            self.emit(indent, f"if type({value}) is not str: raise GiveUp()")
            self.emit(indent, f"{index} = {lookup}[{value}]")
            self.long(index, indent, checked=True)
        elif kind in ("record", "error"):
            self.record(schema, value, indent)
        elif kind == "union":
            self.union(schema, value, indent)
        elif kind in ("array", "map"):
            self.block(schema, kind, value, indent)
        else:
            raise Unsupported(f"type {kind}")

    def record(self, schema: dict[str, Any], value: str, indent: int) -> None:
        self.enter(schema["name"])
        self.emit(indent, f"if type({value}) is not dict: raise GiveUp()")
        for field in schema["fields"]:
            item = self.var()
            self.emit(indent, f"{item} = {value}[{field['name']!r}]")
            self.write(field["type"], item, indent)
        self.leave()

    def union(self, branches: list[Any], value: str, indent: int) -> None:
        """Only unions whose branch fastavro picks is obvious from the value's type: null plus
        one primitive, or null plus records given in tuple notation ``(full name, datum)``."""
        resolved = [self.resolve(b) for b in branches]
        kinds = [_kind(b) for b in resolved]
        if len(set(kinds) & _PRIMITIVES) != len([k for k in kinds if k in _PRIMITIVES]):
            raise Unsupported("a union with a primitive type twice")
        others = [(i, b) for i, b in enumerate(resolved) if kinds[i] != "null"]
        if not others:
            raise Unsupported("a union of null alone")
        first = "if"
        if "null" in kinds:
            self.emit(indent, f"if {value} is None: o.append({kinds.index('null') << 1})")
            first = "elif"
        if len(others) == 1 and kinds[others[0][0]] in _PRIMITIVES:
            i, branch = others[0]
            if first == "elif":
                self.emit(indent, "else:")
                indent += 1
            self.emit(indent, f"o.append({i << 1})")
            self.write(branch, value, indent)
        elif all(kinds[i] in ("record", "error") for i, _ in others):
            name, datum = self.var("k"), self.var()
            self.emit(indent, f"{first} type({value}) is tuple and len({value}) == 2:")
            self.emit(indent + 1, f"{name}, {datum} = {value}")
            for j, (i, branch) in enumerate(others):
                self.emit(indent + 1, f"{'if' if j == 0 else 'elif'} {name} == "
                                      f"{branch['name']!r}:")
                self.emit(indent + 2, f"o.append({i << 1})")
                self.write(branch, datum, indent + 2)
            self.emit(indent + 1, "else: raise GiveUp()")
            self.emit(indent, "else: raise GiveUp()")
        else:
            raise Unsupported("a union fastavro resolves by validating the value")

    def block(self, schema: dict[str, Any], kind: str, value: str, indent: int) -> None:
        item, count = self.var(), self.var("n")
        if kind == "map":
            key = self.var()
            self.emit(indent, f"if type({value}) is not dict: raise GiveUp()")
            self.emit(indent, f"if {value}:")
            self.emit(indent + 1, f"{count} = len({value})")
            self.long(count, indent + 1, checked=True)
            self.emit(indent + 1, f"for {key}, {item} in {value}.items():")
            self.write("string", key, indent + 2)
            self.write(schema["values"], item, indent + 2)
        else:
            self.emit(indent, f"if type({value}) is not list: raise GiveUp()")
            self.emit(indent, f"if {value}:")
            self.emit(indent + 1, f"{count} = len({value})")
            self.long(count, indent + 1, checked=True)
            self.emit(indent + 1, f"for {item} in {value}:")
            self.write(schema["items"], item, indent + 2)
        self.emit(indent, "o.append(0)")


def compile_writer(parsed: Any) -> Writer | None:
    """A writer of `parsed` (fastavro-parsed) bodies, or None when fastavro must do it all."""
    writer: Writer | None = _function(_generate_writer(parsed), "write",
                                      _precompiled()[1], _writer_source)
    return writer


def _generate_writer(parsed: Any, constants: str = "_c") -> _WriterCompiler | None:
    compiler = _WriterCompiler(parsed, constants)
    try:
        compiler.write(parsed, "d", 1)
    except Unsupported:
        return None
    return compiler


def _writer_source(compiler: _WriterCompiler, name: str, *, typed: bool = False) -> str:
    head = f"def {name}(d: Any) -> bytes:\n" if typed else f"def {name}(d):\n"
    return head + compiler.declarations(typed) + "    o = bytearray()\n" + \
        "\n".join(compiler.lines) + "\n    return bytes(o)\n"


# -- ahead of time ------------------------------------------------------------------------------
#
# The same generated functions, written once into a module (connector/serde/precompiled.py) for
# the schemas shipped in schemas/, so that mypyc can compile them to C with the rest of the
# native core (scripts/build_native.py): ~3x faster than the exec'd code on a platform activity.
# A function is found by the digest of the code `compile_reader`/`compile_writer` generates, so
# a precompiled function is only ever used for exactly the code it was generated from; anything
# else (a schema from a registry, a generator change not yet regenerated) is exec'd as before.

PRECOMPILED_MODULE = "connector.serde.precompiled"


@cache
def _precompiled() -> tuple[dict[str, Reader], dict[str, Writer]]:
    """The precompiled module's READERS and WRITERS, imported on first use (it imports GiveUp
    from here)."""
    module = importlib.import_module(PRECOMPILED_MODULE)
    return module.READERS, module.WRITERS


def precompiled_module(schemas: Iterable[Any], origin: str) -> str:
    """Source of the precompiled module for these fastavro-parsed schemas: a typed reader and
    writer per distinct generated function, and the READERS/WRITERS tables by digest."""
    functions: list[str] = []
    readers: dict[str, str] = {}
    writers: dict[str, str] = {}

    def add(parsed: Any, kind: str, table: dict[str, str], generate: Callable[..., Any],
            render: Callable[..., str]) -> None:
        compiler = generate(parsed)
        if compiler is None or (digest := compiler.digest(kind)) in table:
            return
        name = table[digest] = f"{kind}_{len(table) + 1}"
        # The same code again, its constants named for this function alone.
        named = generate(parsed, f"_{name}_c")
        functions.append(named.module_constants() + render(named, name, typed=True))

    for parsed in schemas:
        add(parsed, "read", readers, _generate_reader, _reader_source)
        add(parsed, "write", writers, _generate_writer, _writer_source)
    header = (f'"""Generated by {origin} from schemas/: do not edit (see connector.serde.compiled).'
              '"""\n\n# ruff: noqa\n\nimport struct\nfrom collections.abc import Callable\n'
              'from typing import Any\n\nfrom connector.serde.compiled import GiveUp\n\n'
              '_F = struct.Struct("<f")\n_D = struct.Struct("<d")\n')
    tables = "".join(
        f"\n{title}: dict[str, Callable[{signature}]] = {{\n" +
        "".join(f"    {digest!r}: {name},\n" for digest, name in table.items()) + "}\n"
        for title, signature, table in (("READERS", "[bytes, int], tuple[Any, int]", readers),
                                        ("WRITERS", "[Any], bytes", writers)))
    return header + "".join(f"\n\n{function}" for function in functions) + "\n" + tables
