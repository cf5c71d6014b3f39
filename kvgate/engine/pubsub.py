"""PUBLISH and the PUBSUB introspection commands on the engine backends: issue 11."""

from __future__ import annotations
