"""kvgate's error texts live in :mod:`kvgate.error_texts`, each written once.

* In ``error_texts.py`` no name is bound twice and no two names hold the same text (for a
  function, the text it builds, its parameters as ``{}``).
* No other module under ``kvgate/`` writes out an error reply: a string that starts with a
  Redis error code and a space (``"ERR ..."``, ``"WRONGTYPE ..."``), as a constant or as
  the head of an f-string.  It imports the text from ``error_texts`` instead.

Both checks read the source with :mod:`ast` (docstrings are not texts), so they see what
Python sees, whatever the quoting or line breaks.  A failure lists each place as
``file:line: text``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

import kvgate

PACKAGE = Path(kvgate.__file__).parent
ROOT = PACKAGE.parent
TEXTS = PACKAGE / "error_texts.py"

#: The first word of Redis's error replies (``-ERR ...`` on the wire).
CODES = (
    "ERR",
    "WRONGTYPE",
    "EXECABORT",
    "NOSCRIPT",
    "NOTBUSY",
    "BUSY",
    "BUSYKEY",
    "BUSYGROUP",
    "NOGROUP",
    "NOPERM",
    "NOAUTH",
    "WRONGPASS",
    "NOPROTO",
    "OOM",
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "MISCONF",
    "NOREPLICAS",
    "CROSSSLOT",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MOVED",
    "ASK",
    "UNKILLABLE",
    "UNBLOCKED",
)
ERROR_REPLY = re.compile(rf"-?(?:{'|'.join(CODES)}) ")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _template(node: ast.JoinedStr) -> str:
    """An f-string with each replacement field as ``{}``."""
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) for every string constant (bytes decoded) and every f-string (as its
    template; the parts inside it are not visited again), docstrings left out."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            yield node.lineno, _template(node)
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if isinstance(node.value, str):
                yield node.lineno, node.value
            elif isinstance(node.value, bytes):
                yield node.lineno, node.value.decode("latin-1")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != TEXTS)


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


# --- error_texts.py: each name once, each text once ------------------------------------


def _bindings() -> Iterator[tuple[str, int, ast.AST]]:
    """(name, line, node) for every name error_texts.py binds at module level."""
    tree = ast.parse(TEXTS.read_text(), str(TEXTS))
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield stmt.name, stmt.lineno, stmt
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        yield node.id, stmt.lineno, stmt
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                yield (alias.asname or alias.name).split(".")[0], stmt.lineno, stmt


def test_each_name_is_bound_once() -> None:
    lines: dict[str, list[int]] = defaultdict(list)
    for name, line, _ in _bindings():
        lines[name].append(line)
    twice = [f"{name} (lines {', '.join(map(str, at))})" for name, at in lines.items() if len(at) > 1]
    if twice:
        pytest.fail(
            f"{_name(TEXTS)} binds these names more than once:\n  " + "\n  ".join(twice), pytrace=False
        )


def _texts() -> Iterator[tuple[str, str, int]]:
    """(text, name, line): a constant's text, or the error texts a function builds."""
    for name, line, node in _bindings():
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                yield node.value.value, name, line
        elif isinstance(node, ast.FunctionDef):
            for at, text in _strings(node):
                if ERROR_REPLY.match(text):
                    yield text, name, at


def test_each_text_is_defined_once() -> None:
    names: dict[str, list[str]] = defaultdict(list)
    for text, name, line in _texts():
        names[text].append(f"{name} (line {line})")
    same = [f"{text!r}: {', '.join(where)}" for text, where in names.items() if len(where) > 1]
    if same:
        pytest.fail(
            f"{_name(TEXTS)} holds these texts under several names:\n  " + "\n  ".join(same), pytrace=False
        )


# --- elsewhere: no error reply written out --------------------------------------------


def _literal_error_texts(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{_name(path)}:{line}: {text!r}" for line, text in sorted(_strings(tree)) if ERROR_REPLY.match(text)
    ]


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_no_error_text_outside_error_texts(path: Path) -> None:
    found = _literal_error_texts(path)
    if found:
        pytest.fail(
            "error replies written out instead of imported from kvgate/error_texts.py:\n  "
            + "\n  ".join(found),
            pytrace=False,
        )


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The scanner itself: constants, bytes, f-string heads and concatenations are found;
    docstrings, other codes' look-alikes and f-string tails are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""ERR a module docstring is no text."""\n'
        "def f(x):\n"
        '    """WRONGTYPE nor is a function\'s."""\n'
        '    a = "ERR plain"\n'
        '    b = f"NOPERM head {x}"\n'
        '    c = ("BUSY "\n'
        '         "split")\n'
        '    d = b"-ERR bytes"\n'
        '    e = f"{x} ERR tail"\n'
        '    g = "ERROR is not a code"\n'
        '    h = "SELECT id FROM keys"\n'
        '    i = "ERR"\n'
    )
    texts = [t.split(": ", 1)[1] for t in _literal_error_texts(sample)]
    assert texts == ["'ERR plain'", "'NOPERM head {}'", "'BUSY split'", "'-ERR bytes'"]
