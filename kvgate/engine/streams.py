"""Stream commands (XADD, XRANGE, consumer groups...): issue 11."""

from __future__ import annotations
