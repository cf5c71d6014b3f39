"""Redis's glob matching (``stringmatchlen`` in ``util.c``), byte for byte.

It differs from :mod:`fnmatch`: ``[^x]`` negates (``[!x]`` does not), ``\\`` escapes, a
``[`` without its ``]`` matches up to the end of the pattern, ranges may be reversed."""

from __future__ import annotations

_STAR, _QUESTION, _OPEN, _CLOSE, _BACKSLASH, _CARET, _DASH = b"*?[]\\^-"
MAX_NESTING = 1000  # Redis gives up (no match) past this many nested '*'


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    if nocase:
        pattern, string = pattern.lower(), string.lower()
    skip = [False]
    return _match(pattern, 0, string, 0, skip, 0)


def _match(p: bytes, pi: int, s: bytes, si: int, skip: list[bool], nesting: int) -> bool:
    if nesting > MAX_NESTING:
        return False
    plen, slen = len(p), len(s)
    while pi < plen and si < slen:
        c = p[pi]
        if c == _STAR:
            while pi + 1 < plen and p[pi + 1] == _STAR:
                pi += 1
            if pi + 1 == plen:
                return True
            while si < slen:
                if _match(p, pi + 1, s, si, skip, nesting + 1):
                    return True
                if skip[0]:
                    return False
                si += 1
            skip[0] = True  # no tail of the string matches: longer prefixes will not either
            return False
        if c == _QUESTION:
            si += 1
        elif c == _OPEN:
            pi += 1
            negate = pi < plen and p[pi] == _CARET
            if negate:
                pi += 1
            matched = False
            while True:
                if pi < plen and p[pi] == _BACKSLASH and plen - pi >= 2:
                    pi += 1
                    if p[pi] == s[si]:
                        matched = True
                elif pi < plen and p[pi] == _CLOSE:
                    break
                elif pi >= plen:
                    pi -= 1  # Redis steps back so the outer loop's increment ends the pattern
                    break
                elif plen - pi >= 3 and p[pi + 1] == _DASH:
                    lo, hi = p[pi], p[pi + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    pi += 2
                    if lo <= s[si] <= hi:
                        matched = True
                elif p[pi] == s[si]:
                    matched = True
                pi += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            si += 1
        else:
            if c == _BACKSLASH and plen - pi >= 2:
                pi += 1
                c = p[pi]
            if c != s[si]:
                return False
            si += 1
        pi += 1
        if si == slen:
            while pi < plen and p[pi] == _STAR:
                pi += 1
            break
    return pi >= plen and si == slen
