"""Avro writers as generated Python: `WriterCompiler` emits the code, `writer_source` the function.

The code writes values of exactly the Python types the schema calls for, byte for byte as fastavro
would, and gives up (GiveUp) on anything else; see connector.serde.compiled for the contract.
"""

from __future__ import annotations

from typing import Any

from connector.serde.codegen import PRIMITIVES, Compiler, Unsupported, kind_of

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
#: Python type a writer accepts for each primitive (exact type, no subclass, no conversion).
PY_TYPE = {"boolean": "bool", "int": "int", "long": "int", "float": "float", "double": "float",
           "bytes": "bytes", "string": "str"}


class WriterCompiler(Compiler):

    def long(self, value: str, indent: int, *, checked: bool = False) -> None:
        """The zig-zag varint appended in place (timestamps take 6 bytes: a helper function
        and its temporary buffer cost more than the loop)."""
        if not checked:
            self.emit(indent, f"if type({value}) is not int: raise GiveUp()")
        self.emit(indent, f"if 0 <= {value} < 64: o.append({value} << 1)")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"if not {LONG_MIN} <= {value} <= {LONG_MAX}: raise GiveUp()")
        self.emit(indent + 1, f"z = ({value} << 1) ^ ({value} >> 63)")
        self.emit(indent + 1, "while z > 0x7F:")
        self.emit(indent + 2, "o.append((z & 0x7F) | 0x80); z >>= 7")
        self.emit(indent + 1, "o.append(z)")

    def write(self, schema: Any, value: str, indent: int) -> None:
        schema = self.resolve(schema)
        kind = kind_of(schema)
        if kind == "null":
            self.emit(indent, f"if {value} is not None: raise GiveUp()")
        elif kind == "boolean":
            self.emit(indent, f"if type({value}) is not bool: raise GiveUp()")
            self.emit(indent, f"o.append(1 if {value} else 0)")
        elif kind == "int":
            self.emit(indent, f"if type({value}) is not int or not {INT_MIN} <= {value} <= "
                              f"{INT_MAX}: raise GiveUp()")
            self.long(value, indent, checked=True)
        elif kind == "long":
            self.long(value, indent)
        elif kind in ("float", "double"):
            fmt = "_F" if kind == "float" else "_D"
            self.emit(indent, f"if type({value}) is not float: raise GiveUp()")
            self.emit(indent, f"o += {fmt}.pack({value})")
        elif kind in ("string", "bytes"):
            data = self.var("e")
            self.emit(indent, f"if type({value}) is not {PY_TYPE[kind]}: raise GiveUp()")
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
        kinds = [kind_of(b) for b in resolved]
        if len(set(kinds) & PRIMITIVES) != len([k for k in kinds if k in PRIMITIVES]):
            raise Unsupported("a union with a primitive type twice")
        others = [(i, b) for i, b in enumerate(resolved) if kinds[i] != "null"]
        if not others:
            raise Unsupported("a union of null alone")
        first = "if"
        if "null" in kinds:
            self.emit(indent, f"if {value} is None: o.append({kinds.index('null') << 1})")
            first = "elif"
        if len(others) == 1 and kinds[others[0][0]] in PRIMITIVES:
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



def generate_writer(parsed: Any, constants: str = "_c") -> WriterCompiler | None:
    compiler = WriterCompiler(parsed, constants)
    try:
        compiler.write(parsed, "d", 1)
    except Unsupported:
        return None
    return compiler


def writer_source(compiler: WriterCompiler, name: str, *, typed: bool = False) -> str:
    head = f"def {name}(d: Any) -> bytes:\n" if typed else f"def {name}(d):\n"
    return head + compiler.declarations(typed) + "    o = bytearray()\n" + \
        "\n".join(compiler.lines) + "\n    return bytes(o)\n"
