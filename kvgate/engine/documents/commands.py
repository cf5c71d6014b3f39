"""The JSON.* commands, as RedisJSON 2.8 (``redis_json/src/commands.rs``) answers them.

A document is one key of type :attr:`KeyType.JSON` whose value is the whole document,
serialized compactly (see README, "Documents", for why one value and not one row per
node).  A command reads it, works on the Python value, and writes it back whole when it
changed.

Each command follows RedisJSON's order of checks (arguments, then the key's type, then the
JSON arguments, then the path) so that the same error wins, and its two reply shapes: a
JSONPath (``$...``) answers one entry per match (``null`` where a match has the wrong type),
a legacy path (``.a``, ``a[0]``) answers the first (or last changed) value, or an error when
nothing matched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

import orjson

from kvgate.engine.documents import paths as P
from kvgate.engine.documents.values import (
    Format,
    Json,
    JsonError,
    dumps,
    equal,
    format_double,
    is_number,
    load_stored,
    memory,
    parse,
    swap_remove,
    type_name,
)
from kvgate.engine.numbers import INT64_MAX, INT64_MIN, to_int
from kvgate.engine.registry import OK, command
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.error_texts import (
    JSON_BAD_NUMBER,
    JSON_BSON_UNSUPPORTED,
    JSON_DEBUG_UNKNOWN,
    JSON_FORMAT_RESP2,
    JSON_INDEX_OUT_OF_BOUNDS,
    JSON_INDEX_OUT_OF_RANGE,
    JSON_NEW_AT_ROOT,
    JSON_NO_SUCH_KEY,
    JSON_NOT_A_NUMBER_RESULT,
    JSON_NOT_INTEGER,
    JSON_NOT_STATIC,
    JSON_PATH_GONE,
    JSON_WRONG_FORMAT,
    JSON_WRONG_KEY_TYPE,
    JSON_WRONG_REPLY_FORMAT,
    SYNTAX_ERROR,
    err,
    json_expected,
    json_path_missing,
    json_path_missing_or,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

LEGACY_ROOT = "."

# --- arguments -------------------------------------------------------------------------


class _Args:
    """RedisJSON's ``NextArg`` over the arguments after the command name."""

    def __init__(self, args: Args) -> None:
        self.name = args[0].lower().decode("utf-8", "replace")
        self.rest = list(args[1:])
        self.i = 0

    def left(self) -> int:
        return len(self.rest) - self.i

    def next(self) -> bytes:
        if self.i >= len(self.rest):
            raise ReplyError(wrong_arity(self.name))
        self.i += 1
        return self.rest[self.i - 1]

    def next_str(self) -> str:
        return self.next().decode("utf-8", "surrogateescape")

    def maybe_str(self) -> str | None:
        return self.next_str() if self.left() else None

    def next_i64(self) -> int:
        value = to_int(self.next())
        if value is None:
            raise ReplyError(JSON_NOT_INTEGER)
        return value


def _path(raw: str) -> P.Path:
    text, legacy = P.legacy_to_jsonpath(raw)
    return P.Path(raw, text, legacy, ())  # elements compiled when used (errors then)


def _compiled(path: P.Path) -> P.Path:
    try:
        return P.compile_path(path.original)
    except P.PathError as exc:
        raise ReplyError(str(exc)) from None


def _json_arg(raw: bytes) -> Json:
    """A JSON argument as ``manager.from_str`` reads it (its error has no code)."""
    try:
        return parse(raw)
    except JsonError as exc:
        raise ReplyError(str(exc)) from None


def _strict_json(raw: bytes) -> Json:
    """``serde_json::from_str``: the whole argument (trailing text refused); its error
    has Redis's ``ERR`` code before it."""
    try:
        return parse(raw, whole=True)
    except JsonError as exc:
        raise ReplyError(err(str(exc))) from None


# --- the key ---------------------------------------------------------------------------

_MISSING: Any = object()
_UNREAD: Any = object()


class _Doc:
    """A document being worked on: the key (None: missing) and its value."""

    def __init__(self, t: Txn, name: bytes) -> None:
        self.t = t
        self.name = name
        self.key: Key | None = t.lookup(name)
        if self.key is not None and self.key.type is not KeyType.JSON:
            raise ReplyError(JSON_WRONG_KEY_TYPE)
        # read when first needed: JSON.SET at the root replaces a document unread
        self._root: Json = _MISSING if self.key is None else _UNREAD
        self.changed = False

    @property
    def root(self) -> Json:
        if self._root is _UNREAD:
            assert self.key is not None
            self._root = load_stored(self.key.value or b"null")
        return self._root

    @root.setter
    def root(self, value: Json) -> None:
        self._root = value

    @property
    def exists(self) -> bool:
        return self._root is not _MISSING

    def require(self) -> Json:
        if not self.exists:
            raise ReplyError(JSON_NO_SUCH_KEY)
        return self.root

    def save(self) -> None:
        value = dumps(self.root).encode()
        key = self.key
        if key is None:
            self.key = self.t.create(self.name, KeyType.JSON, value)
        else:
            self.key = self.t.set_value(key, value)
        self.changed = False

    def delete(self) -> None:
        if self.key is not None:
            self.t.delete(self.key)
        self.key, self.root = None, _MISSING

    # RedisJSON's ``update``/``replace``: follow the steps, act on the last one

    def update(self, steps: tuple[P.Step, ...], fn: Callable[[Json], Json]) -> bool:
        """Set the value at ``steps`` to ``fn(value)`` (``_REMOVE`` removes it); False when
        the path no longer leads anywhere."""
        if not steps:
            new = fn(self.root)
            self.root = None if new is _REMOVE else new
            self.changed = True
            return True
        node = self.root
        for n, step in enumerate(steps):
            last = n == len(steps) - 1
            if isinstance(node, dict):
                key = str(step)
                if last:
                    if key not in node:
                        return False
                    new = fn(node[key])
                    if new is _REMOVE:
                        swap_remove(node, key)
                    else:
                        node[key] = new
                    self.changed = True
                    return True
                node = node.get(key)
            elif isinstance(node, list):
                at = step if isinstance(step, int) else int(step)
                if last:
                    if at >= len(node):
                        return False
                    new = fn(node[at])
                    if new is _REMOVE:
                        del node[at]
                    else:
                        node[at] = new
                    self.changed = True
                    return True
                node = node[at] if at < len(node) else None
            else:
                return False
        return False  # pragma: no cover - the loop always returns on the last step

    def at(self, steps: tuple[P.Step, ...], test: Callable[[Json], bool]) -> Json:
        """The value at ``steps`` for a change, as RedisJSON's ``update`` finds it again:
        ``Path does not exist`` when the steps no longer lead to a value ``test`` accepts
        (an earlier match of the same command moved it, or a filter over an object's
        values tracked it by position)."""
        node = self.root
        for step in steps:
            if isinstance(node, dict) and str(step) in node:
                node = node[str(step)]
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                raise ReplyError(JSON_PATH_GONE)
        if not test(node):
            raise ReplyError(JSON_PATH_GONE)
        return node

    def get(self, steps: tuple[P.Step, ...]) -> Json:
        node = self.root
        for step in steps:
            node = P.child(node, step)
        return node


_REMOVE: Any = object()


def _matches(doc: _Doc, path: P.Path, test: Callable[[Json], bool]) -> list[tuple[P.Step, ...] | None]:
    """``find_all_paths``: each match's steps, None where ``test`` refuses its value."""
    return [steps if test(v) else None for v, steps in P.evaluate(_compiled(path), doc.root, tracked=True)]


def _found(doc: _Doc, path: P.Path, test: Callable[[Json], bool]) -> list[tuple[P.Step, ...]]:
    """``find_paths``: the steps of the matches ``test`` accepts."""
    return [s for s in _matches(doc, path, test) if s is not None]


def _first(doc: Json, path: P.Path) -> Json:
    """``get_first``: the first match or ``Path '<jsonpath>' does not exist``."""
    found = P.values(_compiled(path), doc)
    if not found:
        raise ReplyError(json_path_missing(path.text))
    return found[0]


def _is_array(v: Json) -> bool:
    return isinstance(v, list)


def _is_object(v: Json) -> bool:
    return isinstance(v, dict)


def _is_string(v: Json) -> bool:
    return isinstance(v, str)


def _is_bool(v: Json) -> bool:
    return isinstance(v, bool)


def _bulk(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# --- JSON.GET ------------------------------------------------------------------------

_GET_WORDS_MAX = 8  # the longest JSON.GET option word (NOESCAPE): longer words are paths


def _get_value(doc: Json, paths: list[P.Path], fmt: Format) -> Reply:
    legacy = all(p.legacy for p in paths)
    if len(paths) == 1:
        path = paths[0]
        if legacy:
            return _bulk(dumps(_first(doc, path), fmt))
        return _bulk(dumps(P.values(_compiled(path), doc), fmt))
    out: dict[str, Json] = {}
    missing = None
    for path in paths:
        try:
            compiled = P.compile_path(path.original)
        except P.PathError:
            continue  # RedisJSON leaves a path it cannot parse out of the answer
        found = P.values(compiled, doc)
        if legacy:
            if not found:
                missing = missing or path.original
                continue
            out[path.original] = found[0]
        else:
            out[path.original] = found
    if missing is not None:
        raise ReplyError(json_path_missing(missing))
    return _bulk(dumps(out, fmt))


@command("json.get")
def json_get(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    paths: list[P.Path] = []
    fmt = Format()
    while a.left():
        arg = a.next_str()
        word = arg.upper()
        if len(arg) > _GET_WORDS_MAX:
            paths.append(_path(arg))
        elif word == "FORMAT":
            if not paths:
                raise ReplyError(JSON_FORMAT_RESP2)
            value = a.next_str()
            if value.upper() == "STRINGS" or value not in ("STRING", "EXPAND1", "EXPAND"):
                raise ReplyError(JSON_WRONG_REPLY_FORMAT)
        elif word == "INDENT":
            fmt.indent = a.next_str()
        elif word == "NEWLINE":
            fmt.newline = a.next_str()
        elif word == "SPACE":
            fmt.space = a.next_str()
        elif word == "NOESCAPE":
            continue
        else:
            paths.append(_path(arg))
    if not paths:
        paths.append(_path(LEGACY_ROOT))
    doc = _Doc(t, name)
    if not doc.exists:
        return None
    return _get_value(doc.root, paths, fmt)


@command("json.mget")
def json_mget(t: Txn, args: Args) -> Reply:
    if len(args) < 3:
        raise ReplyError(wrong_arity("json.mget"))
    path = _path(args[-1].decode("utf-8", "surrogateescape"))
    out: list[Reply] = []
    for name in args[1:-1]:
        try:
            doc = _Doc(t, name)
            if not doc.exists:
                out.append(None)
                continue
            out.append(_get_value(doc.root, [path], Format()))
        except ReplyError:
            out.append(None)
    return out


# --- JSON.SET, JSON.MSET, JSON.MERGE -------------------------------------------------------


def _update_targets(doc: _Doc, path: P.Path, nx: bool, xx: bool) -> list[tuple[str, tuple[P.Step, ...], str]]:
    """``KeyValue::find_paths``: ("set", steps, "") for matches, ("add", steps, key) for a
    key to add; empty when nothing is to change."""
    compiled = _compiled(path)
    if not nx:
        found = P.evaluate(compiled, doc.root, tracked=True)
        if found:
            return [("set", steps, "") for _, steps in found]
    if xx:
        return []
    if not compiled.is_static():
        raise ReplyError(JSON_NOT_STATIC)
    last = compiled.elements[-1]
    if last.rule in ("literal", "string_list"):
        key = last.text if last.rule == "literal" else last.children[0].text
        if len(compiled.elements) == 1:
            return [("add", (), key)]
        parent = P.Path(path.original, path.text, path.legacy, compiled.elements[:-1])
        return [("add", steps, key) for _, steps in P.evaluate(parent, doc.root, tracked=True)]
    if not P.evaluate(compiled, doc.root, tracked=True):
        raise ReplyError(JSON_INDEX_OUT_OF_RANGE)
    return []


def _apply(
    doc: _Doc, targets: list[tuple[str, tuple[P.Step, ...], str]], value: Json, merge: bool = False
) -> bool:
    updated = False
    for i, (kind, steps, key) in enumerate(targets):
        v = value if i == len(targets) - 1 else _copy(value)
        if kind == "set":
            fn = (lambda cur, v=v: _merge(cur, v)) if merge else (lambda cur, v=v: v)
            updated = doc.update(steps, fn) or updated
        else:
            container = doc.get(steps)
            if isinstance(container, dict) and key not in container:
                container[key] = v
                doc.changed = True
                updated = True
    return updated


def _copy(v: Json) -> Json:
    if not isinstance(v, dict | list):
        return v
    try:
        return orjson.loads(orjson.dumps(v))  # doubles round-trip exactly, and fast
    except TypeError:  # an integer beyond 64 bits
        return copy.deepcopy(v)


def _merge(doc: Json, patch: Json) -> Json:
    """RFC 7396 as RedisJSON's ``merge``."""
    if not isinstance(patch, dict):
        return _copy(patch)
    if not isinstance(doc, dict):
        doc = {}
    for k, v in patch.items():
        if v is None:
            if k in doc:
                swap_remove(doc, k)
        else:
            doc[k] = _merge(doc.get(k), v)
    return doc


def _format_option(a: _Args) -> None:
    value = a.next_str()
    if value == "BSON":
        raise ReplyError(JSON_BSON_UNSUPPORTED)
    if value not in ("STRING", "JSON"):
        raise ReplyError(JSON_WRONG_FORMAT)


@command("json.set")
def json_set(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path, raw = a.next(), _path(a.next_str()), a.next()
    nx = xx = False
    while a.left():
        word = a.next_str().upper()
        if word == "NX" and not (nx or xx):
            nx = True
        elif word == "XX" and not (nx or xx):
            xx = True
        elif word == "FORMAT":
            _format_option(a)
        else:
            raise ReplyError(SYNTAX_ERROR)
    doc = _Doc(t, name)
    value = _json_arg(raw)
    if not doc.exists:
        if xx:
            return None
        if not path.is_root:
            raise ReplyError(JSON_NEW_AT_ROOT)
        doc.root = value
        doc.save()
        return OK
    if path.is_root:
        if nx:
            return None
        doc.root = value
        doc.save()
        return OK
    targets = _update_targets(doc, path, nx, xx)
    if targets and _apply(doc, targets, value):
        doc.save()
        return OK
    return None


@command("json.merge")
def json_merge(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path, raw = a.next(), _path(a.next_str()), a.next()
    while a.left():
        if a.next_str().upper() == "FORMAT":
            _format_option(a)
        else:
            raise ReplyError(SYNTAX_ERROR)
    doc = _Doc(t, name)
    value = _json_arg(raw)
    if not doc.exists:
        if not path.is_root:
            raise ReplyError(JSON_NEW_AT_ROOT)
        doc.root = value
        doc.save()
        return OK
    if path.is_root:
        doc.root = _merge(doc.root, value)
        doc.save()
        return OK
    targets = _update_targets(doc, path, False, False)
    if targets and _apply(doc, targets, value, merge=True):
        doc.save()
        return OK
    return None


@command("json.mset")
def json_mset(t: Txn, args: Args) -> Reply:
    if len(args) < 4:
        raise ReplyError(wrong_arity("json.mset"))
    a = _Args(args)
    docs: dict[bytes, _Doc] = {}
    actions = []
    while a.left():
        name = a.next()
        doc = docs.get(name) or _Doc(t, name)
        docs[name] = doc
        path = _path(a.next_str())
        if path.is_root:
            targets = None
        elif doc.exists:
            targets = _update_targets(doc, path, False, False)
        else:
            raise ReplyError(JSON_NEW_AT_ROOT)
        value = _json_arg(a.next())
        actions.append((doc, targets, value))
    for doc, targets, value in actions:
        if targets is None:
            doc.root = value
            doc.changed = True
        elif targets:
            _apply(doc, targets, value)
    for doc in docs.values():
        if doc.changed:
            doc.save()
    return OK


# --- JSON.DEL, JSON.FORGET, JSON.CLEAR ------------------------------------------------------


def _deletion_order(a: list[str], b: list[str]) -> int:
    """``prepare_paths_for_deletion``'s sort: longer paths first, keys before indexes,
    higher indexes before lower ones."""
    for i in range(max(len(a), len(b))):
        if i >= len(b):
            return -1
        if i >= len(a):
            return 1
        p1, p2 = a[i], b[i]
        n1 = int(p1) if p1.isascii() and p1.isdigit() else None
        n2 = int(p2) if p2.isascii() and p2.isdigit() else None
        if n1 is None and n2 is None:
            if p1 != p2:
                return -1 if p1.encode() < p2.encode() else 1
        elif n1 is not None and n2 is None:
            return 1
        elif n1 is None:
            return -1
        elif n1 != n2:
            return 1 if n2 > n1 else -1  # type: ignore[operator]
    return 0


def _binary_search(items: list[bytes], wanted: bytes) -> int:
    """Rust's ``slice::binary_search`` (before 1.82): which of equal items it lands on
    matters, since an equal path found before it counts as a parent (RedisJSON then
    deletes neither of two equal paths)."""
    size, left, right = len(items), 0, len(items)
    while left < right:
        mid = left + size // 2
        if items[mid] == wanted:
            return mid
        if items[mid] < wanted:
            left = mid + 1
        else:
            right = mid
        size = right - left
    raise ValueError(wanted)  # pragma: no cover - every path is in the list


def _for_deletion(found: list[tuple[P.Step, ...]]) -> list[tuple[P.Step, ...]]:
    if len(found) < 2:
        return found
    as_text: list[tuple[list[str], tuple[P.Step, ...]]] = [
        ([str(s) for s in steps], steps) for steps in found
    ]

    def order(x: tuple[list[str], tuple[P.Step, ...]], y: tuple[list[str], tuple[P.Step, ...]]) -> int:
        return _deletion_order(x[0], y[0])

    as_text.sort(key=cmp_to_key(order))
    joined = sorted(",".join(t).encode() for t, _ in as_text)
    kept = []
    for text, steps in as_text:
        j = ",".join(text).encode()
        at = _binary_search(joined, j)
        if any(j.startswith(p) for p in joined[:at]):
            continue
        kept.append(steps)
    return kept


@command("json.del", "json.forget")
def json_del(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.next_str() if a.left() else LEGACY_ROOT)
    doc = _Doc(t, name)
    if not doc.exists:
        return 0
    if path.is_root:
        doc.delete()
        return 1
    deleted = 0
    for steps in _for_deletion(_found(doc, path, lambda v: True)):
        if doc.update(steps, lambda v: _REMOVE):
            deleted += 1
    if deleted:
        doc.save()
    return deleted


def _clearable(v: Json) -> bool:
    if isinstance(v, dict | list):
        return len(v) > 0
    if isinstance(v, bool):
        return False
    if isinstance(v, int | float):
        return v != 0
    return False


@command("json.clear")
def json_clear(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    first = a.next_str() if a.left() else LEGACY_ROOT  # RedisJSON reads only the first path
    path = _path(first)
    doc = _Doc(t, name)
    doc.require()
    cleared = 0

    def clear(v: Json) -> Json:
        nonlocal cleared
        if isinstance(v, dict):
            cleared += 1
            return {}
        if isinstance(v, list):
            cleared += 1
            return []
        if is_number(v):
            cleared += 1
            return 0
        return v

    for steps in _found(doc, path, _clearable):
        doc.update(steps, clear)
    if cleared:
        doc.save()
    return cleared


# --- types and sizes --------------------------------------------------------------------


@command("json.type")
def json_type(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if path.legacy:
        if not doc.exists:
            return None
        try:
            return _bulk(type_name(_first(doc.root, path)))
        except ReplyError:
            return None
    if not doc.exists:
        return None
    return [_bulk(type_name(v)) for v in P.values(_compiled(path), doc.root)]


@command("json.strlen")
def json_strlen(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if path.legacy:
        if not doc.exists:
            return None
        v = _first(doc.root, path)
        if not isinstance(v, str):
            raise ReplyError(json_expected("string", type_name(v)))
        return len(v.encode())
    root = doc.require()
    return [len(v.encode()) if isinstance(v, str) else None for v in P.values(_compiled(path), root)]


@command("json.objlen")
def json_objlen(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if path.legacy:
        if not doc.exists:
            return None
        try:
            v = _first(doc.root, path)
        except ReplyError:
            return None
        if not isinstance(v, dict):
            raise ReplyError(json_expected("object", type_name(v)))
        return len(v)
    if not doc.exists:
        raise ReplyError(json_path_missing_or(path.text, "not an object"))
    return [len(v) if isinstance(v, dict) else None for v in P.values(_compiled(path), doc.root)]


@command("json.objkeys")
def json_objkeys(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if path.legacy:
        if not doc.exists:
            return None
        try:
            v = _first(doc.root, path)
        except ReplyError:
            return None
        if not isinstance(v, dict):
            raise ReplyError(json_path_missing_or(path.text, "not an object"))
        return [_bulk(k) for k in v]
    root = doc.require()
    return [[_bulk(k) for k in v] if isinstance(v, dict) else None for v in P.values(_compiled(path), root)]


@command("json.arrlen")
def json_arrlen(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if not doc.exists:
        if path.legacy:
            return None
        raise ReplyError(JSON_NO_SUCH_KEY)
    found = P.values(_compiled(path), doc.root)
    if path.legacy:
        if not found:
            raise ReplyError(json_path_missing(path.original))
        if not isinstance(found[0], list):
            raise ReplyError(json_path_missing_or(path.original, "not an array"))
        return len(found[0])
    return [len(v) if isinstance(v, list) else None for v in found]


def _arr_bounds(start: int, end: int, n: int) -> tuple[int, int]:
    """``normalize_arr_indices``."""
    start = max(0, n + start) if start < 0 else min(start, n - 1)
    if end == 0:
        end = n
    elif end < 0:
        end = max(0, n + end)
    else:
        end = min(end, n)
    return start, end


def _index_of(arr: list[Json], value: Json, start: int, end: int) -> int:
    if not arr:
        return -1
    lo, hi = _arr_bounds(start, end, len(arr))
    for i in range(lo, hi):
        if equal(arr[i], value):
            return i
    return -1


@command("json.arrindex")
def json_arrindex(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path, raw = a.next(), _path(a.next_str()), a.next()
    start = a.next_i64() if a.left() else 0
    end = a.next_i64() if a.left() else 0
    if a.left():
        raise ReplyError(wrong_arity("json.arrindex"))
    value = _strict_json(raw)  # before the key's type, as RedisJSON reads them
    doc = _Doc(t, name)
    if not doc.exists:
        raise ReplyError(json_path_missing(path.original))
    if path.legacy:
        arr = _first(doc.root, path)
        if not isinstance(arr, list):
            raise ReplyError(json_expected("array", type_name(arr)))
        return _index_of(arr, value, start, end)
    return [
        _index_of(v, value, start, end) if isinstance(v, list) else None
        for v in P.values(_compiled(path), doc.root)
    ]


# --- changes in place ---------------------------------------------------------------------


def _per_match(
    doc: _Doc,
    path: P.Path,
    test: Callable[[Json], bool],
    change: Callable[[tuple[P.Step, ...]], Reply],
    legacy_missing: str | None,
) -> Reply:
    """Run ``change`` on each accepted match and answer RedisJSON's way: a JSONPath gets a
    list (None where the match's type is wrong), a legacy path the last result or
    ``legacy_missing`` as an error when nothing matched.  What changed before an error
    stays changed, as in RedisJSON."""
    try:
        if path.legacy:
            found = _found(doc, path, test)
            if not found:
                raise ReplyError(legacy_missing or "")
            result: Reply = None
            for steps in found:
                result = change(steps)
            return result
        return [None if steps is None else change(steps) for steps in _matches(doc, path, test)]
    finally:
        if doc.changed:
            doc.save()


def _long(v: Json) -> bool:
    """ijson's Long: an integer that fits i64 (one above is read as a double)."""
    return isinstance(v, int) and not isinstance(v, bool) and INT64_MIN <= v <= INT64_MAX


def _number_result(v: int | float) -> str:
    return format_double(v) if isinstance(v, float) else str(v)


def _num_op(t: Txn, args: Args, multiply: bool) -> Reply:
    a = _Args(args)
    name, path, raw = a.next(), _path(a.next_str()), a.next()
    doc = _Doc(t, name)
    doc.require()
    results: list[int | float] = []

    def change(steps: tuple[P.Step, ...]) -> Reply:
        number = _strict_json(raw)
        if not is_number(number):
            raise ReplyError(JSON_BAD_NUMBER)
        assert isinstance(number, int | float)

        def op(cur: Json) -> Json:
            assert isinstance(cur, int | float)
            if _long(cur) and isinstance(number, int) and INT64_MIN <= number <= INT64_MAX:
                r = cur * number if multiply else cur + number
                return (r + (1 << 63)) % (1 << 64) - (1 << 63)  # i64 wrapping, as Rust
            try:
                r2 = float(cur) * float(number) if multiply else float(cur) + float(number)
            except OverflowError:
                r2 = float("inf")
            if r2 != r2 or r2 in (float("inf"), float("-inf")):
                raise ReplyError(JSON_NOT_A_NUMBER_RESULT)
            return r2

        doc.at(steps, is_number)
        doc.update(steps, op)
        new = doc.get(steps)
        assert isinstance(new, int | float)
        results.append(new)
        return new  # type: ignore[return-value]  # a number here, printed below

    reply = _per_match(
        doc,
        path,
        is_number,
        change,
        json_path_missing_or(path.text, "does not contains a number"),
    )
    if path.legacy:
        return _bulk(_number_result(results[-1]))
    assert isinstance(reply, list)
    return _bulk(dumps(list(reply)))


@command("json.numincrby")
def json_numincrby(t: Txn, args: Args) -> Reply:
    return _num_op(t, args, multiply=False)


@command("json.nummultby")
def json_nummultby(t: Txn, args: Args) -> Reply:
    return _num_op(t, args, multiply=True)


@command("json.toggle")
def json_toggle(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path = a.next(), _path(a.next_str())
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        doc.at(steps, _is_bool)
        doc.update(steps, lambda v: not v)
        return 1 if doc.get(steps) else 0

    reply = _per_match(doc, path, _is_bool, change, json_path_missing_or(path.text, "not a bool"))
    if path.legacy:
        return b"true" if reply else b"false"
    return reply


@command("json.strappend")
def json_strappend(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    first = a.next()
    if a.left():
        path, raw = _path(first.decode("utf-8", "surrogateescape")), a.next()
    else:
        path, raw = _path(LEGACY_ROOT), first
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        value = _strict_json(raw)
        if not isinstance(value, str):
            raise ReplyError(json_expected("string", raw.decode("utf-8", "replace")))
        doc.at(steps, _is_string)
        doc.update(steps, lambda v: v + value)  # type: ignore[operator]
        new = doc.get(steps)
        assert isinstance(new, str)
        return len(new.encode())

    return _per_match(doc, path, _is_string, change, json_path_missing_or(path.text, "not a string"))


def _json_values(a: _Args) -> list[Json]:
    if not a.left():
        raise ReplyError(wrong_arity(a.name))
    return [_json_arg(a.next()) for _ in range(a.left())]


@command("json.arrappend")
def json_arrappend(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path = a.next(), _path(a.next_str())
    items = _json_values(a)
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        arr = doc.at(steps, _is_array)
        assert isinstance(arr, list)
        arr.extend(_copy(v) for v in items)
        doc.changed = True
        return len(arr)

    return _per_match(doc, path, _is_array, change, json_path_missing_or(path.original, "not an array"))


@command("json.arrinsert")
def json_arrinsert(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path, index = a.next(), _path(a.next_str()), a.next_i64()
    items = _json_values(a)
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        arr = doc.at(steps, _is_array)
        assert isinstance(arr, list)
        at = len(arr) + index if index < 0 else index
        if not 0 <= at <= len(arr):
            raise ReplyError(JSON_INDEX_OUT_OF_BOUNDS)
        arr[at:at] = [_copy(v) for v in items]
        doc.changed = True
        return len(arr)

    return _per_match(doc, path, _is_array, change, json_path_missing_or(path.text, "not an array"))


@command("json.arrpop")
def json_arrpop(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    raw_path: str | None = None
    if a.left():
        arg = a.next_str()
        if arg.upper() == "FORMAT" and a.left():
            value = a.next_str()
            if value not in ("STRINGS", "EXPAND1", "EXPAND") or value == "STRING":
                raise ReplyError(JSON_WRONG_REPLY_FORMAT)
            raise ReplyError(JSON_FORMAT_RESP2)
        raw_path = arg
    if raw_path is None:
        path, index = _path(LEGACY_ROOT), INT64_MAX
    else:
        path = _path(raw_path)
        index = -1
        if a.left():
            parsed = to_int(a.next())
            index = -1 if parsed is None else parsed
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        arr = _pop_target(doc, steps)
        if arr is None:
            return None
        if not isinstance(arr, list):
            raise ReplyError(json_expected("array", type_name(arr)))
        if not arr:
            return None
        n = len(arr)
        at = max(0, n + index) if index < 0 else min(index, n - 1)
        popped = arr.pop(at)
        doc.changed = True
        return _bulk(dumps(popped))

    return _per_match(doc, path, _is_array, change, json_path_missing_or(path.text, "not an array"))


def _pop_target(doc: _Doc, steps: tuple[P.Step, ...]) -> list[Json] | None:
    """ARRPOP's array: None when the steps lead nowhere now; WRONGTYPE on another type."""
    try:
        return doc.at(steps, lambda v: True)  # type: ignore[return-value]
    except ReplyError:
        return None


def _normalize(i: int, n: int) -> int:
    """RedisJSON's ``ArrayIndex::normalize``."""
    if i < 0:
        return n - min(n, -i)
    return min(n - 1, i) if n > 0 else 0


@command("json.arrtrim")
def json_arrtrim(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name, path = a.next(), _path(a.next_str())
    start, stop = a.next_i64(), a.next_i64()
    doc = _Doc(t, name)
    doc.require()

    def change(steps: tuple[P.Step, ...]) -> Reply:
        arr = doc.at(steps, _is_array)
        assert isinstance(arr, list)
        n = len(arr)
        hi = _normalize(stop, n)
        lo = _normalize(start, n) if start < 0 or start < n else hi + 1
        arr[:] = [] if lo > hi or n == 0 else arr[lo : hi + 1]
        doc.changed = True
        return len(arr)

    return _per_match(doc, path, _is_array, change, json_path_missing_or(path.text, "not an array"))


# --- JSON.RESP, JSON.DEBUG ------------------------------------------------------------------


def _resp(v: Json) -> Reply:
    if v is None:
        return None
    if isinstance(v, bool):
        return b"true" if v else b"false"
    if isinstance(v, int) and _long(v):
        return v
    if isinstance(v, int | float):
        return b"%.17g" % v
    if isinstance(v, str):
        return _bulk(v)
    if isinstance(v, list):
        return [b"[", *(_resp(x) for x in v)]
    out: list[Reply] = [b"{"]
    for k, x in v.items():
        out += [_bulk(k), _resp(x)]
    return out


@command("json.resp")
def json_resp(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    name = a.next()
    path = _path(a.next_str() if a.left() else LEGACY_ROOT)
    doc = _Doc(t, name)
    if not doc.exists:
        return None
    if path.legacy:
        return _resp(_first(doc.root, path))
    return [_resp(v) for v in P.values(_compiled(path), doc.root)]


_DEBUG_HELP = [
    b"MEMORY <key> [path] - reports memory usage",
    b"HELP                - this message",
]


@command("json.debug")
def json_debug(t: Txn, args: Args) -> Reply:
    a = _Args(args)
    sub = a.next_str().upper()
    if sub == "HELP":
        return list(_DEBUG_HELP)
    if sub != "MEMORY":
        raise ReplyError(JSON_DEBUG_UNKNOWN)
    name = a.next()
    path = _path(a.maybe_str() or LEGACY_ROOT)
    doc = _Doc(t, name)
    if path.legacy:
        return memory(_first(doc.root, path)) if doc.exists else 0
    if not doc.exists:
        return []
    return [memory(v) for v in P.values(_compiled(path), doc.root)]
