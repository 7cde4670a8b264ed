"""Avro readers as generated Python: `ReaderCompiler` emits the code, `reader_source` the function.

The code reads one well-formed body of the schema and gives up (GiveUp, an IndexError, ...) on
anything else; see connector.serde.compiled for the contract.
"""

from __future__ import annotations

from typing import Any

from connector.serde.codegen import Compiler, Unsupported, kind_of


class ReaderCompiler(Compiler):

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
        kind = kind_of(schema)
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
            if kind_of(resolved) in ("record", "error"):  # return_record_name=True
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



def generate_reader(parsed: Any, constants: str = "_c") -> ReaderCompiler | None:
    compiler = ReaderCompiler(parsed, constants)
    try:
        compiler.read(parsed, "v0", 1)
    except Unsupported:
        return None
    return compiler


def reader_source(compiler: ReaderCompiler, name: str, *, typed: bool = False) -> str:
    head = f"def {name}(b: bytes, p: int) -> tuple[Any, int]:\n" if typed else \
        f"def {name}(b, p):\n"
    return head + compiler.declarations(typed) + "    size = len(b)\n" + \
        "\n".join(compiler.lines) + "\n    return v0, p\n"
