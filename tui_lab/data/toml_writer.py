"""A small TOML writer for the subset presets use (``tomllib`` reads, nothing in the stdlib writes).

Supported: tables, arrays of tables, strings (multi-line ones as ``\"\"\"`` blocks), ints, floats
(inf and nan included), bools, arrays of those, and dicts inside arrays of tables (written as
inline tables). ``None`` values are left out (TOML has no null). ``tomllib.loads(dumps(d)) == d``
for any such ``d`` without Nones; the tests check it.
"""

from __future__ import annotations

import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


class TomlWriteError(TypeError):
    """A value this writer cannot express in TOML."""


def key(name: str) -> str:
    """A key, bare when it can be, quoted otherwise."""
    return name if _BARE_KEY.match(name) else _basic_string(name)


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04x}"
    return ch


def _basic_string(text: str) -> str:
    return '"' + "".join(_escape_char(ch) for ch in text) + '"'


def _multiline_string(text: str) -> str:
    """A ``\"\"\"`` block: newlines and tabs stay as they are, quotes are escaped where they would
    close the block (a third quote in a row, or a quote at the very end)."""
    out: list[str] = []
    run = 0  # unescaped quotes just written
    for i, ch in enumerate(text):
        if ch == '"':
            if run == 2 or i == len(text) - 1:
                out.append('\\"')
                run = 0
            else:
                out.append('"')
                run += 1
            continue
        run = 0
        if ch in ("\n", "\t"):
            out.append(ch)
        elif ch == "\r" and text[i + 1 : i + 2] == "\n":
            out.append("\\r")
        else:
            out.append(_escape_char(ch))
    return '"""\n' + "".join(out) + '"""'


def value(v: Any, *, inline: bool = True) -> str:
    """One TOML value (a dict becomes an inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(v, str):
        return _multiline_string(v) if "\n" in v else _basic_string(v)
    if isinstance(v, list | tuple):
        if any(x is None for x in v):
            raise TomlWriteError("an array cannot hold None")
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = [f"{key(str(k))} = {value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TomlWriteError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: list[str], data: dict[str, Any], lines: list[str], header: str | None) -> None:
    direct = [k for k, v in data.items() if v is not None and not isinstance(v, dict) and not _is_table_array(v)]
    if header is not None and (direct or not data):  # a table of tables only is implied by its children
        if lines:
            lines.append("")
        lines.append(header)
    tables, arrays = [], []
    for k, v in data.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif _is_table_array(v):
            arrays.append((k, v))
        else:
            lines.append(f"{key(str(k))} = {value(v)}")
    for k, v in tables:
        sub = [*path, str(k)]
        _table(sub, v, lines, "[" + ".".join(key(p) for p in sub) + "]")
    for k, items in arrays:
        sub = [*path, str(k)]
        name = ".".join(key(p) for p in sub)
        for item in items:
            if lines:
                lines.append("")
            lines.append(f"[[{name}]]")
            for ik, iv in item.items():
                if iv is not None:
                    lines.append(f"{key(str(ik))} = {value(iv)}")


def dumps(data: dict[str, Any]) -> str:
    """The document for ``data`` (a dict of str keys), ending with a newline."""
    lines: list[str] = []
    _table([], data, lines, None)
    return "\n".join(lines) + "\n"
