"""JSON values as RedisJSON 2.x reads and writes them.

RedisJSON parses with ``serde_json`` into ``ijson`` values and prints with ``serde_json``;
a client sees both in its replies (error texts, number formatting), so this module
reproduces them rather than using Python's :mod:`json`, which differs in each:

* **Reading** (:func:`parse`): ``serde_json``'s grammar and error texts, with the line and
  column (in bytes) it reports (``expected `,` or `]` at line 1 column 4``); nesting deeper
  than 127 arrays/objects is refused (``recursion limit exceeded``); a number is an integer
  when it has no fraction or exponent and fits 64 bits (``-2**63 .. 2**64-1``), else a double
  (``-0`` is the double ``-0.0``); text after the first value is ignored, as RedisJSON
  ignores it.  A duplicate object key keeps its first place and its last value.
* **Writing** (:func:`dumps`): compact, strings escaped as ``serde_json`` does (``\\n``,
  ``\\u0001``, anything else verbatim UTF-8), doubles as ``ryu`` prints them (``1.0``,
  ``1e30``, ``1.5e-7``, ``1000000000000000.0``), and RedisJSON's INDENT/NEWLINE/SPACE
  formatter (with its one ``has_value`` flag for the whole document).

In Python a document is ``dict`` (insertion ordered), ``list``, ``str``, ``bool``, ``None``,
``int`` (an integer) and ``float`` (a double, even when integral: ``1.0`` stays ``1.0``).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

Json = dict[str, Any] | list[Any] | str | bool | int | float | None

#: serde_json's default recursion limit: the 128th nested array/object is refused.
MAX_DEPTH = 128

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


_POW10 = [float(f"1e{n}") for n in range(309)]


class JsonError(Exception):
    """A parse error with ``serde_json``'s text (``<what> at line L column C``)."""


_WS = b" \n\t\r"
_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_HEX = b"0123456789abcdefABCDEF"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0
        self.depth = MAX_DEPTH

    # serde_json's positions: ``error`` at what was read, ``peek_error`` one byte further
    def _at(self, index: int, what: str) -> JsonError:
        before = self.data[:index]
        line = before.count(b"\n") + 1
        column = index - (before.rfind(b"\n") + 1)
        return JsonError(f"{what} at line {line} column {column}")

    def error(self, what: str) -> JsonError:
        return self._at(self.i, what)

    def peek_error(self, what: str) -> JsonError:
        return self._at(min(len(self.data), self.i + 1), what)

    def peek(self) -> int | None:
        return self.data[self.i] if self.i < len(self.data) else None

    def next(self) -> int | None:
        if self.i < len(self.data):
            self.i += 1
            return self.data[self.i - 1]
        return None

    def whitespace(self) -> int | None:
        data, i = self.data, self.i
        while i < len(data) and data[i] in _WS:
            i += 1
        self.i = i
        return data[i] if i < len(data) else None

    def value(self) -> Json:
        c = self.whitespace()
        if c is None:
            raise self.peek_error("EOF while parsing a value")
        if c == ord("n"):
            self.i += 1
            self.ident(b"ull")
            return None
        if c == ord("t"):
            self.i += 1
            self.ident(b"rue")
            return True
        if c == ord("f"):
            self.i += 1
            self.ident(b"alse")
            return False
        if c == ord("-"):
            self.i += 1
            return self.number(False)
        if 0x30 <= c <= 0x39:
            return self.number(True)
        if c == ord('"'):
            self.i += 1
            return self.string()
        if c == ord("["):
            self.enter()
            self.i += 1
            out: list[Json] = []
            first = True
            while True:
                c = self.whitespace()
                if c == ord("]"):
                    self.i += 1
                    break
                if c == ord(",") and not first:
                    self.i += 1
                    c = self.whitespace()
                elif c is None:
                    raise self.peek_error("EOF while parsing a list")
                elif first:
                    first = False
                else:
                    raise self.peek_error("expected `,` or `]`")
                if c == ord("]"):
                    raise self.peek_error("trailing comma")
                if c is None:
                    raise self.peek_error("EOF while parsing a value")
                out.append(self.value())
            self.depth += 1
            return out
        if c == ord("{"):
            self.enter()
            self.i += 1
            obj: dict[str, Json] = {}
            first = True
            while True:
                c = self.whitespace()
                if c == ord("}"):
                    self.i += 1
                    break
                if c == ord(",") and not first:
                    self.i += 1
                    c = self.whitespace()
                elif c is None:
                    raise self.peek_error("EOF while parsing an object")
                elif first:
                    first = False
                else:
                    raise self.peek_error("expected `,` or `}`")
                if c == ord('"'):
                    self.i += 1
                    key = self.string()
                elif c == ord("}"):
                    raise self.peek_error("trailing comma")
                elif c is None:
                    raise self.peek_error("EOF while parsing a value")
                else:
                    raise self.peek_error("key must be a string")
                c = self.whitespace()
                if c == ord(":"):
                    self.i += 1
                elif c is None:
                    raise self.peek_error("EOF while parsing an object")
                else:
                    raise self.peek_error("expected `:`")
                obj[key] = self.value()
            self.depth += 1
            return obj
        raise self.peek_error("expected value")

    def enter(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            raise self.peek_error("recursion limit exceeded")

    def ident(self, rest: bytes) -> None:
        for expected in rest:
            c = self.next()
            if c is None:
                raise self.error("EOF while parsing a value")
            if c != expected:
                raise self.error("expected ident")

    def number(self, positive: bool) -> int | float:
        """serde_json's ``parse_integer`` and friends: the digits as a u64 significand and
        a power of ten, the double computed from them as serde_json does (one rounding of
        the significand, one multiplication or division: not always the nearest double)."""
        c = self.next()
        if c is None:
            raise self.error("EOF while parsing a value")
        if c == ord("0"):
            nxt = self.peek()
            if nxt is not None and 0x30 <= nxt <= 0x39:
                raise self.peek_error("invalid number")
            significand = 0
        elif 0x31 <= c <= 0x39:
            significand = c - 0x30
            while True:
                d = self.peek()
                if d is None or not 0x30 <= d <= 0x39:
                    break
                if significand * 10 + (d - 0x30) > U64_MAX:
                    return self.long_integer(positive, significand)
                self.i += 1
                significand = significand * 10 + (d - 0x30)
        else:
            raise self.error("invalid number")
        nxt = self.peek()
        if nxt == ord("."):
            return self.decimal(positive, significand, 0)
        if nxt in (ord("e"), ord("E")):
            return self.exponent(positive, significand, 0)
        if positive:
            return significand
        if significand == 0 or significand > -I64_MIN:
            return -float(significand)  # -0 and below i64: a double
        return -significand

    def long_integer(self, positive: bool, significand: int) -> float:
        exponent = 0
        while True:
            d = self.peek()
            if d is not None and 0x30 <= d <= 0x39:
                self.i += 1
                exponent += 1
            elif d == ord("."):
                return self.decimal(positive, significand, exponent)
            elif d in (ord("e"), ord("E")):
                return self.exponent(positive, significand, exponent)
            else:
                return self.from_parts(positive, significand, exponent)

    def decimal(self, positive: bool, significand: int, exponent: int) -> float:
        self.i += 1
        after = 0
        while True:
            d = self.peek()
            if d is None or not 0x30 <= d <= 0x39:
                break
            if significand * 10 + (d - 0x30) > U64_MAX:  # further digits are ignored
                while (d := self.peek()) is not None and 0x30 <= d <= 0x39:
                    self.i += 1
                if self.peek() in (ord("e"), ord("E")):
                    return self.exponent(positive, significand, exponent + after)
                return self.from_parts(positive, significand, exponent + after)
            self.i += 1
            significand = significand * 10 + (d - 0x30)
            after -= 1
        if after == 0:
            if self.peek() is not None:
                raise self.peek_error("invalid number")
            raise self.peek_error("EOF while parsing a value")
        if self.peek() in (ord("e"), ord("E")):
            return self.exponent(positive, significand, exponent + after)
        return self.from_parts(positive, significand, exponent + after)

    def exponent(self, positive: bool, significand: int, starting: int) -> float:
        self.i += 1
        positive_exp = True
        if self.peek() == ord("+"):
            self.i += 1
        elif self.peek() == ord("-"):
            self.i += 1
            positive_exp = False
        c = self.next()
        if c is None:
            raise self.error("EOF while parsing a value")
        if not 0x30 <= c <= 0x39:
            raise self.error("invalid number")
        exp = c - 0x30
        while (d := self.peek()) is not None and 0x30 <= d <= 0x39:
            self.i += 1
            if exp * 10 + (d - 0x30) > 2**31 - 1:
                while (d := self.peek()) is not None and 0x30 <= d <= 0x39:
                    self.i += 1
                if significand != 0 and positive_exp:
                    raise self.error("number out of range")
                return 0.0 if positive else -0.0
            exp = exp * 10 + (d - 0x30)
        final = starting + exp if positive_exp else starting - exp
        return self.from_parts(positive, significand, final)

    def from_parts(self, positive: bool, significand: int, exponent: int) -> float:
        f = float(significand)
        while True:
            if abs(exponent) <= 308:
                if exponent >= 0:
                    f *= _POW10[exponent]
                    if f == float("inf"):
                        raise self.error("number out of range")
                else:
                    f /= _POW10[-exponent]
                break
            if f == 0.0:
                break
            if exponent >= 0:
                raise self.error("number out of range")
            f /= 1e308
            exponent += 308
        return f if positive else -f

    def string(self) -> str:
        data = self.data
        parts: list[str] = []
        start = self.i
        while True:
            if self.i >= len(data):
                raise self.error("EOF while parsing a string")
            c = data[self.i]
            if c == ord('"'):
                parts.append(self._utf8(start, self.i))
                self.i += 1
                return "".join(parts)
            if c == ord("\\"):
                parts.append(self._utf8(start, self.i))
                self.i += 1
                parts.append(self.escape())
                start = self.i
                continue
            if c < 0x20:
                self.i += 1
                raise self.error("control character (\\u0000-\\u001F) found while parsing a string")
            self.i += 1

    def _utf8(self, start: int, end: int) -> str:
        try:
            return self.data[start:end].decode()
        except UnicodeDecodeError as exc:
            self.i = start + exc.end
            raise self.error("invalid unicode code point") from None

    def escape(self) -> str:
        c = self.next()
        if c is None:
            raise self.error("EOF while parsing a string")
        if c in _ESCAPES:
            return _ESCAPES[c]
        if c != ord("u"):
            raise self.error("invalid escape")
        n = self.hex4()
        if 0xDC00 <= n <= 0xDFFF:
            raise self.error("lone leading surrogate in hex escape")
        if 0xD800 <= n <= 0xDBFF:
            if self.next() != ord("\\") or self.next() != ord("u"):
                raise self.error("unexpected end of hex escape")
            n2 = self.hex4()
            if not 0xDC00 <= n2 <= 0xDFFF:
                raise self.error("lone leading surrogate in hex escape")
            return chr(0x10000 + ((n - 0xD800) << 10) + (n2 - 0xDC00))
        return chr(n)

    def hex4(self) -> int:
        if self.i + 4 > len(self.data):
            self.i = len(self.data)
            raise self.error("EOF while parsing a string")
        n = 0
        for _ in range(4):
            c = self.data[self.i]
            self.i += 1
            if c not in _HEX:
                raise self.error("invalid escape")
            n = n * 16 + int(chr(c), 16)
        return n


def _serde_number(text: str) -> int | float:
    """One number literal (already valid JSON) as serde_json reads it.

    Most literals take the fast way: an integer in 64 bits is that integer, and a decimal
    of at most 15 digits (a significand below 2**53) with at most 22 of them after the
    point is exact in serde_json's one multiplication or division by an exact power of
    ten, so it is the correctly rounded double Python's ``float`` gives."""
    if "e" not in text and "E" not in text:
        point = text.find(".")
        if point < 0:
            n = int(text)
            if I64_MIN <= n <= U64_MAX and text != "-0":
                return n
        elif len(text) - (text[0] == "-") <= 16 and len(text) - point <= 23:
            return float(text)
    negative = text.startswith("-")
    reader = _Reader(text[1:].encode() if negative else text.encode())
    return reader.number(not negative)


def _no_constant(name: str) -> None:
    raise ValueError(name)  # NaN, Infinity: not JSON


#: Where orjson might read a number otherwise than serde_json: an exponent, 16 or more
#: digits (a significand that may not fit a double exactly, an integer beyond 64 bits),
#: and ``-0`` where a value starts, an integer for orjson but the double ``-0.0`` for
#: serde_json.  The check is conservative (text inside strings counts too, which only
#: costs the slower way) and cheap: the text is mapped to a sketch in which digits and
#: points are ``0`` and exponent letters ``e``, then searched for two substrings (a regular
#: expression over a 1 KB document took 15-45 us, the sketch 1-2 us).
_SKETCH = bytes(
    ord("0") if chr(c) in "0123456789." else ord("e") if chr(c) in "eE" else ord(" ") for c in range(256)
)
_LONG_NUMBER = b"0" * 16
_MINUS_ZERO = re.compile(rb"-0(?![.0-9])")  # a literal start: searched fast
_VALUE_STARTS_AFTER = frozenset(b" \t\n\r:,[")


def _negative_zero(raw: bytes) -> bool:
    return any(m.start() == 0 or raw[m.start() - 1] in _VALUE_STARTS_AFTER for m in _MINUS_ZERO.finditer(raw))


def _unsure_number(raw: bytes) -> bool:
    sketch = raw.translate(_SKETCH)
    return b"0e" in sketch or _LONG_NUMBER in sketch or (b"-0" in raw and _negative_zero(raw))


def _fast(raw: bytes) -> Json:
    """A C parser where it reads as serde_json does: orjson when no number could read
    otherwise, else Python's with numbers through :func:`_serde_number`; ValueError where
    it might not read alike (or the text is invalid): then the exact reader runs."""
    if b"\\u" in raw or raw.count(b"[") + raw.count(b"{") >= MAX_DEPTH:
        raise ValueError("escapes or depth: read exactly")
    if not _unsure_number(raw):
        return orjson.loads(raw)  # its errors are ValueErrors: the exact reader then says why
    text = raw.decode("utf-8")  # bytes to json.loads would also guess UTF-16 and UTF-32
    try:
        return json.loads(
            text, parse_int=_serde_number, parse_float=_serde_number, parse_constant=_no_constant
        )
    except JsonError as exc:  # a number out of range: its position is the exact reader's to say
        raise ValueError(str(exc)) from None


def parse(raw: bytes, whole: bool = False) -> Json:
    """A JSON argument as RedisJSON reads it; :class:`JsonError` with serde_json's text.
    ``whole``: text after the value is an error (``serde_json::from_str``), else ignored
    (how RedisJSON reads a document)."""
    try:
        return _fast(raw)
    except (ValueError, RecursionError):
        pass  # invalid, or not surely read alike: the exact reader decides
    reader = _Reader(raw)
    value = reader.value()
    if whole and reader.whitespace() is not None:
        raise reader.peek_error("trailing characters")
    return value


# --- writing -------------------------------------------------------------------------


def format_double(x: float) -> str:
    """``ryu``'s shortest text for a finite double, as serde_json prints it."""
    if x == 0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign = "-" if x < 0 else ""
    _, digits_t, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    assert isinstance(exp, int)
    e = exp + (len(digits_t) - len(digits))  # value = digits * 10**e
    length = len(digits)
    k = e + length  # where the decimal point goes
    if e >= 0 and k <= 16:
        text = digits + "0" * e + ".0"
    elif 0 < k <= 16:
        text = digits[:k] + "." + digits[k:]
    elif -5 < k <= 0:
        text = "0." + "0" * -k + digits
    elif length == 1:
        text = f"{digits}e{k - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{k - 1}"
    return sign + text


def _escape(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            short = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(o)
            out.append(short or f"\\u{o:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_PLAIN = frozenset(chr(c) for c in range(0x20)) | {'"', "\\"}


def quote(s: str) -> str:
    if _PLAIN.isdisjoint(s):
        return '"' + s + '"'
    return _escape(s)


def scalar_text(v: Json) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_double(v)
    assert isinstance(v, str)
    return quote(v)


def _compact(v: Json, out: list[str]) -> None:
    if isinstance(v, dict):
        out.append("{")
        first = True
        for k, item in v.items():
            if not first:
                out.append(",")
            first = False
            out.append(quote(k))
            out.append(":")
            _compact(item, out)
        out.append("}")
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _compact(item, out)
        out.append("]")
    else:
        out.append(scalar_text(v))


class Format:
    """JSON.GET's INDENT / NEWLINE / SPACE (None: not given)."""

    def __init__(self, indent: str | None = None, newline: str | None = None, space: str | None = None):
        self.indent, self.newline, self.space = indent, newline, space

    @property
    def plain(self) -> bool:
        return self.indent is None and self.newline is None and self.space is None


class _Pretty:
    """RedisJSON's ``RedisJsonFormatter`` driven the way serde drives a formatter."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.level = 0
        self.has_value = False  # one flag for the whole output, as in RedisJSON
        self.out: list[str] = []

    def new_line(self) -> None:
        if self.fmt.newline is not None:
            self.out.append(self.fmt.newline)
        if self.fmt.indent is not None:
            self.out.append(self.fmt.indent * self.level)

    def write(self, v: Json) -> None:
        out = self.out
        if isinstance(v, dict | list):
            opening, closing = ("{", "}") if isinstance(v, dict) else ("[", "]")
            self.level += 1
            self.has_value = False
            out.append(opening)
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for n, (k, item) in enumerate(items):
                if n:
                    out.append(",")
                self.new_line()
                if isinstance(v, dict):
                    out.append(quote(k))  # type: ignore[arg-type]
                    out.append(":")
                    if self.fmt.space is not None:
                        out.append(self.fmt.space)
                self.write(item)
                self.has_value = True
            self.level -= 1
            if self.has_value:
                self.new_line()
            out.append(closing)
        else:
            out.append(scalar_text(v))


def load_stored(raw: bytes) -> Json:
    """A document as kvgate stored it: its own compact text (:func:`dumps`), in which every
    double is printed shortest and exact, so a standard parser reads it back unchanged."""
    return orjson.loads(raw)


def dumps(v: Json, fmt: Format | None = None) -> str:
    if fmt is None or fmt.plain:
        try:
            fast = orjson.dumps(v)
        except TypeError:  # an integer beyond 64 bits
            pass
        else:
            # orjson prints what serde_json prints (strings escaped alike, doubles shortest
            # with the same notation thresholds) but for a positive exponent's sign:
            # ``1e+30`` where serde_json has ``1e30``.  Rare; the exact writer handles it.
            if b"e+" not in fast:
                return fast.decode()
        out: list[str] = []
        _compact(v, out)
        return "".join(out)
    pretty = _Pretty(fmt)
    pretty.write(v)
    return "".join(pretty.out)


def type_name(v: Json) -> str:
    """JSON.TYPE's name of a value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def is_number(v: Json) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def equal(a: Json, b: Json) -> bool:
    """RedisJSON's ``is_equal`` (ARRINDEX): same type and value; an integer never equals a
    double; objects equal whatever their key order."""
    ta, tb = type(a), type(b)
    if ta is not tb:
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return len(a) == len(b) and all(k in b and equal(v, b[k]) for k, v in a.items())
    return a == b


def _capacity(n: int) -> int:
    """ijson's capacity for ``n`` elements pushed one by one: 4, then doubling."""
    if n == 0:
        return 0
    cap = 4
    while cap < n:
        cap *= 2
    return cap


def memory(v: Json) -> int:
    """JSON.DEBUG MEMORY's estimate (RedisJSON's ``get_memory`` over ijson's layout).  An
    array's or object's capacity is taken as what parsing it gives (4, then doubling); one
    that shrank (ARRPOP, DEL) keeps its larger capacity in RedisJSON, not here."""
    size = 8  # size_of::<IValue>()
    if isinstance(v, bool) or v is None:
        return size
    if isinstance(v, float):
        return size + 16
    if isinstance(v, int):
        if -128 <= v <= 383:
            return size
        if -8_388_608 < v <= 8_388_607:
            return size + 4
        return size + 16
    if isinstance(v, str):
        return size + len(v.encode())
    if isinstance(v, list):
        if not v:
            return size
        return size + 8 * (_capacity(len(v)) + 2) + sum(memory(x) for x in v)
    if not v:
        return size
    return size + 8 * (_capacity(len(v)) * 3 + 2) + sum(len(k.encode()) + memory(x) for k, x in v.items())


def swap_remove(obj: dict[str, Json], key: str) -> None:
    """Remove ``key`` as ijson does: the last entry takes its place."""
    keys = list(obj)
    at = keys.index(key)
    if at == len(keys) - 1:
        del obj[key]
        return
    last_key, last_value = obj.popitem()
    items = list(obj.items())
    items[at] = (last_key, last_value)
    obj.clear()
    obj.update(items)
