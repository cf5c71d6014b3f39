"""HyperLogLog commands (PFADD, PFCOUNT, PFMERGE) on strings, in Redis's own representation: issue 11."""

from __future__ import annotations
