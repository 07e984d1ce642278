"""Verification probes: http, Open Inference Protocol v2 inference, Prometheus queries.

`run_probe` / `run_probes` do the I/O and never raise for network or protocol trouble;
the mapping from an answer to GREEN / AMBER / RED lives in pure modules (`http_rules`,
`inference_rules`, `prometheus_rules`, `thresholds`, `jsonpath`) with the rules written in
their docstrings.
"""

from aideploy.probes.runner import (
    ProbeKind,
    ProbeResult,
    ProbeTarget,
    join_url,
    run_probe,
    run_probes,
    worst,
)

__all__ = [
    "ProbeKind",
    "ProbeResult",
    "ProbeTarget",
    "join_url",
    "run_probe",
    "run_probes",
    "worst",
]
