"""Where a probe that names no URL goes: the Service's cluster name, or a base URL template."""

from __future__ import annotations

import pytest

from aideploy.logic.probe_url import probe_base_url, unknown_placeholders

PROXY = "http://127.0.0.1:8001/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(None, "http://fraud-preview.ml.svc.cluster.local:8080", id="cluster-dns"),
        pytest.param("", "http://fraud-preview.ml.svc.cluster.local:8080", id="empty-is-unset"),
        pytest.param("http://127.0.0.1:9000", "http://127.0.0.1:9000", id="fixed"),
        pytest.param(
            PROXY,
            "http://127.0.0.1:8001/api/v1/namespaces/ml/services/fraud-preview:8080/proxy",
            id="kubectl-proxy",
        ),
        pytest.param(
            "http://127.0.0.1:38080/{namespace}/{service}",
            "http://127.0.0.1:38080/ml/fraud-preview",
            id="demo-node",
        ),
    ],
)
def test_probe_base_url(template: str | None, expected: str) -> None:
    assert probe_base_url("ml", "fraud-preview", 8080, "cluster.local", template) == expected


@pytest.mark.parametrize(
    ("template", "unknown"),
    [
        (PROXY, []),
        ("http://127.0.0.1:9000", []),
        ("http://x/{svc}/{namespace}", ["{svc}"]),
        ("http://x/{}/{Port}", ["{}", "{Port}"]),
    ],
)
def test_unknown_placeholders(template: str, unknown: list[str]) -> None:
    assert unknown_placeholders(template) == unknown
