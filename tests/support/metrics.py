"""Reading ``/_kvgate/metrics`` the way Prometheus does: with ``prometheus_client``'s own
parser, so a family the parser cannot type (``unknown``) or a malformed line fails here."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """``labels -> value`` of every sample called ``name`` (``kvgate_requests_total``)."""
    out: dict[frozenset[tuple[str, str]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[frozenset(sample.labels.items())] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for key, v in samples(text, name).items() if wanted <= key)
