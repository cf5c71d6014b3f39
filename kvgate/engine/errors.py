"""Error texts of kvgate's engine that Redis itself never says."""

from __future__ import annotations


def not_supported(name: str, backend: str) -> str:
    return f"ERR command '{name}' is not supported by the {backend} backend"
