"""Bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD) on strings: issue 11."""

from __future__ import annotations
