"""RedisJSON 2.x paths: JSONPath (``$.a[0]``, ``$..x``, filters) and the legacy syntax.

Why not a JSONPath library
--------------------------
jsonpath-ng 1.8 (the library fakeredis uses) was measured against RedisJSON 2.8 on 13
paths over one document; 3 differ and none of its errors match: it refuses RedisJSON's
``&&``/``||`` filters (``$.items[?(@.price < 10 && @.tag == "x")]``, the issue's own
example), accepts ``&`` where RedisJSON refuses it, and orders ``$..*`` differently.
RedisJSON's error texts come from its ``pest`` parser (``Error occurred on position 4,
"$.a[ <<<<----", expected one of the following: ...``), and clients see them.  So this
module parses RedisJSON's grammar (its ``grammar.pest``, 2.8) with a small PEG engine
that records failed attempts the way pest 2.7 does (the furthest position, the rules
tried there, a parent replacing its children unless exactly one child failed), and
evaluates the parse tree as RedisJSON's ``json_path`` crate does (ordering of ``..``,
filter comparisons, index clamping, and its quirks: a filter over an object's values
tracks each match by position, and a quoted key with escapes is looked up differently
when the caller tracks paths).

A legacy path (anything not starting ``$.``/``$[``/``$`` alone) is turned into JSONPath
as RedisJSON does (``.`` -> ``$``, ``.a`` -> ``$.a``, ``a`` -> ``$.a``); commands then
answer it with one value instead of a list (see :mod:`.commands`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kvgate.engine.documents.values import Json

# --- the PEG engine ------------------------------------------------------------------

# pest's Rule enum order (EOI first, then the grammar's rules in order): sorting expected
# rules by it gives RedisJSON's order in error texts.
_ORDER = (  # noqa: SIM905 - one rule name after another, as pest declares them
    "EOI literal string string_escape string_value string_value_escape_1 string_value_escape_2 "
    "string_list pos_number number decimal numbers_list numbers_range right_range all_range "
    "left_range full_range from_current from_root select_term op ge gt le lt eq ne re boolean "
    "boolean_true boolean_false null term single_filter filter_relation and or inner_filter "
    "filter all full_scan bracket element first_element root simple_root query simple_query "
    "WHITESPACE"
).split()
_RANK = {name: i for i, name in enumerate(_ORDER)}
_DISPLAY = {
    "literal": "<string>",
    "all": "'*'",
    "full_scan": "'..'",
    "numbers_list": "'<number>[,<number>,...]'",
    "string_list": "'<string>[,<string>,...]'",
    "numbers_range": "['start:end:steps']",
    "number": "'<number>'",
    "filter": "'[?(filter_expression)]'",
}


@dataclass(slots=True)
class Node:
    rule: str
    start: int
    end: int
    children: list[Node] = field(default_factory=list)
    text: str = ""


class _State:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.attempt_pos = 0
        self.attempts: list[str] = []
        self.atomic = False

    def attempts_at(self, pos: int) -> int:
        return len(self.attempts) if self.attempt_pos == pos else 0

    def track(self, rule: str, pos: int, index: int, prev: int) -> None:
        """pest's ``ParserState::track`` (positive attempts only: the grammar's lookaheads
        are all inside atomic rules, where nothing is tracked)."""
        if self.atomic:
            return
        curr = self.attempts_at(pos)
        if curr > prev and curr - prev == 1:
            return
        if pos == self.attempt_pos:
            del self.attempts[index:]
        if pos > self.attempt_pos:
            self.attempts.clear()
            self.attempt_pos = pos
        if pos == self.attempt_pos:
            self.attempts.append(rule)


Parser = Callable[[_State], "list[Node] | None"]


def _rule(name: str, body: Parser | None = None, atomic: bool = False) -> Any:
    """A named rule; ``atomic`` for pest's ``@{...}`` (no whitespace, no inner nodes)."""
    holder: dict[str, Parser] = {}

    def parse(st: _State) -> list[Node] | None:
        start = st.pos
        index = len(st.attempts) if start == st.attempt_pos else 0
        prev = st.attempts_at(start)
        outer = st.atomic
        if atomic:
            st.atomic = True
        got = holder["body"](st)
        st.atomic = outer
        if got is None:
            st.track(name, start, index, prev)
            return None
        if outer:  # inside an atomic rule: no pair of its own
            return []
        return [Node(name, start, st.pos, [] if atomic else got, st.text[start : st.pos])]

    def define(body: Parser) -> None:
        holder["body"] = body

    parse.define = define  # type: ignore[attr-defined]
    if body is not None:
        define(body)
    return parse


def _lit(s: str) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        if st.text.startswith(s, st.pos):
            st.pos += len(s)
            return []
        return None

    return parse


def _chars(test: Callable[[str], bool]) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        if st.pos < len(st.text) and test(st.text[st.pos]):
            st.pos += 1
            return []
        return None

    return parse


def _skip(st: _State) -> None:
    if not st.atomic:
        while st.pos < len(st.text) and st.text[st.pos] == " ":
            st.pos += 1


def _seq(*parts: Parser) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        start = st.pos
        out: list[Node] = []
        for i, p in enumerate(parts):
            if i:
                _skip(st)
            got = p(st)
            if got is None:
                st.pos = start
                return None
            out += got
        return out

    return parse


def _alt(*parts: Parser) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        for p in parts:
            got = p(st)
            if got is not None:
                return got
        return None

    return parse


def _opt(p: Parser) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        got = p(st)
        return [] if got is None else got

    return parse


def _star(p: Parser) -> Parser:
    """``p*``: pest skips whitespace before each repetition but the first."""
    again = _seq(lambda st: [], p)

    def parse(st: _State) -> list[Node] | None:
        got = p(st)
        if got is None:
            return []
        out = list(got)
        while True:
            more = again(st)
            if more is None:
                return out
            out += more

    return parse


def _plus(p: Parser) -> Parser:
    return _seq(p, _star(p))


def _not(p: Parser) -> Parser:
    def parse(st: _State) -> list[Node] | None:
        start = st.pos
        got = p(st)
        st.pos = start
        return [] if got is None else None

    return parse


_ANY = _chars(lambda c: True)
_DIGIT = _chars(lambda c: "0" <= c <= "9")
_NONZERO = _chars(lambda c: "1" <= c <= "9")
_LITERAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_`~+#%$^/:")

literal = _rule("literal", _plus(_chars(_LITERAL_CHARS.__contains__)), atomic=True)
string_escape = _rule("string_escape", _lit("\\"), atomic=True)
string_value = _rule(
    "string_value", _star(_plus(_seq(_not(_alt(_lit('"'), _lit("\\"), _lit("'"))), _ANY))), atomic=True
)
string_value_escape_1 = _rule(
    "string_value_escape_1",
    _star(
        _alt(
            _plus(_seq(_not(_alt(_lit('"'), _lit("\\"))), _ANY)),
            _seq(string_escape, _alt(_lit('"'), _lit("\\"))),
        )
    ),
    atomic=True,
)
string_value_escape_2 = _rule(
    "string_value_escape_2",
    _star(
        _alt(
            _plus(_seq(_not(_alt(_lit("'"), _lit("\\"))), _ANY)),
            _seq(string_escape, _alt(_lit("'"), _lit("\\"))),
        )
    ),
    atomic=True,
)
string = _alt(
    _seq(_lit("'"), string_value, _lit("'")),
    _seq(_lit('"'), string_value, _lit('"')),
    _seq(_lit('"'), string_value_escape_1, _lit('"')),
    _seq(_lit("'"), string_value_escape_2, _lit("'")),
)
string_list = _rule("string_list", _seq(string, _star(_seq(_lit(","), string))))
pos_number = _rule("pos_number", _seq(_NONZERO, _star(_DIGIT)), atomic=True)
number = _rule(
    "number",
    _alt(_seq(_opt(_lit("-")), _NONZERO, _star(_DIGIT)), _seq(_opt(_lit("-")), _DIGIT)),
    atomic=True,
)
decimal = _rule("decimal", _seq(number, _opt(_seq(_lit("."), _plus(_DIGIT)))), atomic=True)
numbers_list = _rule("numbers_list", _seq(number, _star(_seq(_lit(","), number))))
_step = _opt(_alt(_seq(_lit(":"), pos_number), _lit(":")))
right_range = _rule("right_range", _seq(_lit(":"), number, _step))
all_range = _rule("all_range", _seq(_lit(":"), _step))
left_range = _rule("left_range", _seq(number, _lit(":"), _step))
full_range = _rule("full_range", _seq(number, _lit(":"), number, _step))
numbers_range = _rule("numbers_range", _alt(full_range, right_range, all_range, left_range))
root = _rule("root")
from_current = _rule("from_current", _seq(_lit("@"), _opt(root)))
from_root = _rule("from_root", _seq(_lit("$"), _opt(root)))
_ops = [_rule(name, _lit(text), atomic=True) for name, text in
        (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("eq", "=="), ("ne", "!="), ("re", "=~"))]  # fmt: skip
op = _alt(*_ops)
boolean = _alt(
    _rule("boolean_true", _lit("true"), atomic=True), _rule("boolean_false", _lit("false"), atomic=True)
)
null = _rule("null", _lit("null"), atomic=True)
term = _alt(from_current, from_root, decimal, string, boolean, null)
single_filter = _rule("single_filter", _alt(_seq(term, op, term), term))
and_ = _rule("and", _lit("&&"))
or_ = _rule("or", _lit("||"))
filter_ = _rule("filter")
inner_filter = _alt(single_filter, _seq(_lit("("), filter_, _lit(")")))
filter_.define(_seq(inner_filter, _star(_seq(_alt(and_, or_), inner_filter))))
all_ = _rule("all", _lit("*"))
full_scan = _rule("full_scan", _lit(".."))
bracket = _alt(numbers_range, numbers_list, string_list, all_, _seq(_lit("?"), filter_))
element = _alt(
    _seq(_lit("."), literal),
    _seq(full_scan, _alt(literal, all_, _seq(_lit("["), bracket, _lit("]")))),
    _seq(_lit("."), all_),
    _seq(_opt(_lit(".")), _lit("["), bracket, _lit("]")),
)
first_element = _alt(literal, all_)
root.define(_seq(_alt(element, first_element), _star(element)))
eoi = _rule("EOI", lambda st: [] if st.pos == len(st.text) else None)
query = _seq(lambda st: [] if st.pos == 0 else None, _lit("$"), _opt(root), eoi)


class PathError(Exception):
    """A path RedisJSON cannot parse, with its text (no ``ERR`` prefix, as RedisJSON)."""


@dataclass(frozen=True)
class Path:
    """A compiled path: the original text, whether it was legacy, the elements."""

    original: str
    text: str  # the JSONPath it was read as
    legacy: bool
    elements: tuple[Node, ...]

    @property
    def is_root(self) -> bool:
        return self.text == "$"

    def is_static(self) -> bool:
        """At most one match: keys and single indexes only (``find_add_paths``)."""
        for n in self.elements:
            if n.rule in ("literal", "number"):
                continue
            if n.rule in ("numbers_list", "string_list"):
                if len(n.children) > 1:
                    return False
                continue
            return False
        return True


def legacy_to_jsonpath(path: str) -> tuple[str, bool]:
    """RedisJSON's ``Path::new``: the JSONPath a path is read as, and whether it is legacy."""
    if path.startswith("$") and (len(path) < 2 or path[1] in ".["):
        return path, False
    if path == ".":
        return "$", True
    if path.startswith("."):
        return "$" + path, True
    return "$." + path, True


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


@lru_cache(maxsize=4096)
def _compile(text: str) -> tuple[Node, ...]:
    st = _State(text)
    got = query(st)
    if got is None:
        expected = sorted(set(st.attempts), key=_RANK.__getitem__)
        shown = ", ".join(_DISPLAY.get(r, r) for r in expected)
        msg = f"expected one of the following: {shown}" if shown else "parsing error"
        pos = st.attempt_pos
        where = _utf8_len(text[:pos])
        if pos == len(text):
            final = f'"{text} <<<<----", {msg}.'
        else:
            final = f'"{text[:pos]} ---->>>> {text[pos:]}", {msg}.'
        raise PathError(f"Error occurred on position {where}, {final}")
    roots = [n for n in got if n.rule == "root"]
    return tuple(roots[0].children) if roots else ()


def compile_path(raw: str) -> Path:
    text, legacy = legacy_to_jsonpath(raw)
    return Path(raw, text, legacy, _compile(text))


# --- evaluation ----------------------------------------------------------------------

Step = str | int
Match = tuple[Json, tuple[Step, ...]]


def _unescape(node: Node, tracked: bool) -> str:
    s = node.text
    if node.rule == "string_value":
        return s
    # RedisJSON swaps these two replacements when it tracks paths (json_path.rs calc_strings)
    double_quoted = node.rule == "string_value_escape_1"
    if double_quoted != tracked:
        return s.replace("\\\\", "\\").replace('\\"', '"')
    return s.replace("\\\\", "\\").replace("\\'", "'")


def _abs_index(i: int, n: int) -> int:
    return min(i, n) if i >= 0 else max(i + n, 0)


class _Calc:
    def __init__(self, root: Json, tracked: bool) -> None:
        self.root = root
        self.tracked = tracked
        self.results: list[Match] = []

    def run(self, elements: tuple[Node, ...] | list[Node], i: int, v: Json, path: tuple[Step, ...]) -> None:
        if i == len(elements):
            self.results.append((v, path))
            return
        node = elements[i]
        rule = node.rule
        if rule == "full_scan":
            self.run(elements, i + 1, v, path)
            self.full_scan(elements, i + 1, v, path)
        elif rule == "all":
            if isinstance(v, dict):
                for k, item in v.items():
                    self.run(elements, i + 1, item, (*path, k))
            elif isinstance(v, list):
                for n, item in enumerate(v):
                    self.run(elements, i + 1, item, (*path, n))
        elif rule == "literal":
            if isinstance(v, dict) and node.text in v:
                self.run(elements, i + 1, v[node.text], (*path, node.text))
        elif rule == "string_list":
            if isinstance(v, dict):
                for c in node.children:
                    key = _unescape(c, self.tracked)
                    if key in v:
                        self.run(elements, i + 1, v[key], (*path, c.text))
        elif rule == "numbers_list":
            if isinstance(v, list):
                n = len(v)
                for c in node.children:
                    at = _abs_index(int(c.text), n)
                    if at < n:
                        self.run(elements, i + 1, v[at], (*path, at))
        elif rule == "numbers_range":
            if isinstance(v, list):
                n = len(v)
                rng = node.children[0]
                parts = rng.children
                step = 1
                if parts and parts[-1].rule == "pos_number":
                    step = int(parts[-1].text)
                    parts = parts[:-1]
                if rng.rule == "right_range":
                    start, end = 0, _abs_index(int(parts[0].text), n)
                elif rng.rule == "all_range":
                    start, end = 0, n
                elif rng.rule == "left_range":
                    start, end = _abs_index(int(parts[0].text), n), n
                else:
                    start, end = _abs_index(int(parts[0].text), n), _abs_index(int(parts[1].text), n)
                for at in range(start, end, step):
                    if at < n:
                        self.run(elements, i + 1, v[at], (*path, at))
        elif rule == "filter":
            if isinstance(v, dict | list):
                values = v.values() if isinstance(v, dict) else v
                for n, item in enumerate(values):  # by position, objects too (RedisJSON's way)
                    if self.filter(node.children, item):
                        self.run(elements, i + 1, item, (*path, n))
            elif self.filter(node.children, v):
                self.run(elements, i + 1, v, path)

    def full_scan(
        self, elements: tuple[Node, ...] | list[Node], i: int, v: Json, path: tuple[Step, ...]
    ) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                self.run(elements, i, item, (*path, k))
                self.full_scan(elements, i, item, (*path, k))
        elif isinstance(v, list):
            for n, item in enumerate(v):
                self.run(elements, i, item, (*path, n))
                self.full_scan(elements, i, item, (*path, n))

    # filters

    def filter(self, parts: list[Node], v: Json) -> bool:
        first = parts[0]
        result = self.single(first, v) if first.rule == "single_filter" else self.filter(first.children, v)
        i = 1
        while i < len(parts):
            relation = parts[i]
            if relation.rule == "and":
                second = parts[i + 1]
                i += 2
                if not result:
                    continue
                if second.rule == "single_filter":
                    result = self.single(second, v)
                else:
                    result = self.filter(second.children, v)
            else:  # or
                if result:
                    break
                return self.filter(parts[i + 1 :], v)
        return result

    def single(self, node: Node, v: Json) -> bool:
        parts = node.children
        left = self.term(parts[0], v)
        if len(parts) == 1:
            return left is not _INVALID
        right = self.term(parts[2], v)
        return _compare(parts[1].rule, left, right)

    def term(self, node: Node, v: Json) -> Any:
        rule = node.rule
        if rule == "decimal":
            try:
                n = int(node.text)
                if -(1 << 63) <= n < (1 << 63):
                    return _Lit(n)
            except ValueError:
                pass
            return _Lit(float(node.text))
        if rule == "boolean_true":
            return _Lit(True)
        if rule == "boolean_false":
            return _Lit(False)
        if rule == "null":
            return _Lit(None)
        if rule in ("string_value", "string_value_escape_1", "string_value_escape_2"):
            if rule == "string_value":
                return _Lit(node.text)
            return _Lit(_unescape(node, True))  # the term's own replacements (not swapped)
        base = v if rule == "from_current" else self.root
        if not node.children:
            return _Val(base)
        sub = _Calc(self.root, False)
        sub.run(node.children[0].children, 0, base, ())
        return _Val(sub.results[0][0]) if len(sub.results) == 1 else _INVALID


class _Lit:
    __slots__ = ("v",)

    def __init__(self, v: Json) -> None:
        self.v = v


class _Val:
    __slots__ = ("v",)

    def __init__(self, v: Json) -> None:
        self.v = v


_INVALID = object()


def _comparable(t: Any) -> tuple[str, Any] | None:
    """A term as (kind, value) for ordering; None for arrays, objects and invalid terms."""
    if t is _INVALID:
        return None
    v = t.v
    if isinstance(t, _Val) and isinstance(v, dict | list):
        return None
    if v is None:
        return ("null", None)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", v)
    return ("str", v)


def _order(a: Any, b: Any) -> int | None:
    ca, cb = _comparable(a), _comparable(b)
    if ca is None or cb is None:
        return None
    (ka, va), (kb, vb) = ca, cb
    if ka in ("int", "float") and kb in ("int", "float"):
        if ka == "int" and kb == "int":
            return (va > vb) - (va < vb)
        fa, fb = float(va), float(vb)
        return 1 if fa > fb else -1 if fa < fb else 0
    if ka != kb:
        return None
    if ka == "null":
        return 0
    if ka == "str":
        ba, bb = va.encode(), vb.encode()
        return (ba > bb) - (ba < bb)
    return (va > vb) - (va < vb)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "re":
        return _regex(a, b)
    if op in ("eq", "ne"):
        same = _deep_equal(a.v, b.v) if isinstance(a, _Val) and isinstance(b, _Val) else _order(a, b) == 0
        return same if op == "eq" else not same
    o = _order(a, b)
    if o is None:
        return False
    return {"gt": o > 0, "ge": o >= 0, "lt": o < 0, "le": o <= 0}[op]


def _deep_equal(a: Json, b: Json) -> bool:
    """ijson's ``IValue ==``: numbers compare by value across integer and double."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return len(a) == len(b) and all(k in b and _deep_equal(x, b[k]) for k, x in a.items())
    return a == b


def _regex(a: Any, b: Any) -> bool:
    if not isinstance(a, _Val) or not isinstance(a.v, str):
        return False
    if (isinstance(b, _Lit) and isinstance(b.v, str)) or (isinstance(b, _Val) and isinstance(b.v, str)):
        pattern = b.v
    else:
        return False
    try:
        return re.search(pattern, a.v) is not None
    except (re.error, RecursionError):
        return False


def evaluate(path: Path, doc: Json, tracked: bool = False) -> list[Match]:
    """Every match of ``path`` in ``doc``: (value, steps from the root), in RedisJSON's order.
    ``tracked``: as RedisJSON evaluates for commands that change the document."""
    calc = _Calc(doc, tracked)
    calc.run(path.elements, 0, doc, ())
    return calc.results


def values(path: Path, doc: Json) -> list[Json]:
    return [v for v, _ in evaluate(path, doc)]


def walk(doc: Json, steps: tuple[Step, ...]) -> Iterator[tuple[Json, Step]]:
    """(container, step) along ``steps``, as RedisJSON's ``update`` follows a path: a
    dict by the step as text, a list by the step as an index."""
    node = doc
    for step in steps:
        yield node, step
        node = child(node, step)


def child(node: Json, step: Step) -> Json:
    if isinstance(node, dict):
        return node.get(str(step))
    if isinstance(node, list) and isinstance(step, int) and step < len(node):
        return node[step]
    return None
