"""Geo commands (GEOADD, GEOSEARCH...) on sorted sets, with Redis's geohash arithmetic: issue 11."""

from __future__ import annotations
