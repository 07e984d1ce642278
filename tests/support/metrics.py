"""Reading an aideploy.metrics.Metrics registry in tests: what a scrape would see."""

from __future__ import annotations

from collections.abc import Iterator

from aideploy.metrics import Metrics


def samples(metrics: Metrics) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample."""
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            yield sample.name, dict(sample.labels), sample.value


def value(metrics: Metrics, metric: str, /, **labels: str) -> float | None:
    """One sample's value, or None: `value(metrics, "aideploy_deployments", phase="Held")`."""
    return metrics.registry.get_sample_value(metric, labels)
