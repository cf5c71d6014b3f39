"""Redis's glob matching (``stringmatchlen`` in ``util.c``), byte for byte.

It differs from :mod:`fnmatch`: ``[^x]`` negates (``[!x]`` does not), ``\\`` escapes, a
``[`` without its ``]`` takes the rest of the pattern as its class, ranges may be reversed.

Redis recurses once per ``*``; this matcher iterates (remembering the last ``*`` and
retrying from it), which gives the same answers without Python's recursion limit.  Like
Redis, a pattern that nests more than ``MAX_NESTING`` stars matches nothing.
"""

from __future__ import annotations

_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _CARET, _DASH = b"*?[]\\^-"
MAX_NESTING = 1000  # Redis gives up (no match) past this many nested '*'


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    if nocase:
        pattern, string = pattern.lower(), string.lower()
    if _nesting(pattern) > MAX_NESTING:
        return False
    p, s = pattern, string
    plen, slen = len(p), len(s)
    if slen == 0:
        return plen == 0  # Redis matches nothing, not even '*', against an empty string
    pi = si = 0
    star_pi = -1  # pattern position just after the last '*' run seen
    star_si = 0  # where in the string that '*' currently stops
    while si < slen:
        if pi < plen and p[pi] == _STAR:
            while pi < plen and p[pi] == _STAR:
                pi += 1
            if pi == plen:
                return True
            star_pi, star_si = pi, si
            continue
        if pi < plen:
            nxt = _token(p, pi, s[si])
            if nxt >= 0:
                pi, si = nxt, si + 1
                continue
        if star_pi < 0:
            return False
        star_si += 1  # let the last '*' take one more byte and retry after it
        pi, si = star_pi, star_si
    while pi < plen and p[pi] == _STAR:
        pi += 1
    return pi == plen


def _token(p: bytes, pi: int, c: int) -> int:
    """Match byte ``c`` against the pattern token at ``pi`` (not a '*'): the position after
    the token, or -1 when it does not match."""
    plen = len(p)
    tok = p[pi]
    if tok == _QUESTION:
        return pi + 1
    if tok == _OPEN:
        pi += 1
        negate = pi < plen and p[pi] == _CARET
        if negate:
            pi += 1
        matched = False
        while True:
            if pi < plen and p[pi] == _BACKSLASH and plen - pi >= 2:
                pi += 1
                matched |= p[pi] == c
            elif pi < plen and p[pi] == _CLOSE:
                break
            elif pi >= plen:
                pi -= 1  # an unterminated class ends with the pattern
                break
            elif plen - pi >= 3 and p[pi + 1] == _DASH:
                lo, hi = sorted((p[pi], p[pi + 2]))
                pi += 2
                matched |= lo <= c <= hi
            else:
                matched |= p[pi] == c
            pi += 1
        return pi + 1 if matched != negate else -1
    if tok == _BACKSLASH and plen - pi >= 2:
        pi += 1
        tok = p[pi]
    return pi + 1 if tok == c else -1


def _nesting(pattern: bytes) -> int:
    """How deep Redis would recurse: one level per run of '*' that is not the pattern's
    last token (a trailing '*' matches at once)."""
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i < n and pattern[i] == _STAR:
                i += 1
            if i < n:
                depth += 1
            continue
        if c == _BACKSLASH and n - i >= 2:
            i += 2
            continue
        if c == _OPEN:  # stars inside a class are literal
            i += 1
            while i < n and pattern[i] != _CLOSE:
                i += 2 if pattern[i] == _BACKSLASH and n - i >= 2 else 1
        i += 1
    return depth
