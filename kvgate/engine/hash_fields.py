"""Hash field expiration and Redis 7.4-8.2's hash commands (HEXPIRE..., HGETDEL, HGETEX, HSETEX): issue 11."""

from __future__ import annotations
