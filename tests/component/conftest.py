"""Fixtures for component tests: real loopback servers (model server, Prometheus), no
Kubernetes. Prometheus comes from hack/fetch-prometheus.sh; if it cannot be fetched or
started the tests that need it fail with the reason, they are never skipped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.modelserver import ModelServer
from tests.support.prometheus import PrometheusServer, PrometheusUnavailableError


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A healthy model server (model `test-model`) for one test."""
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def scraped_model_server() -> Iterator[ModelServer]:
    """The model server Prometheus scrapes; shared by a module, healthy at each test start."""
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, scraped_model_server: ModelServer
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping `scraped_model_server` every second."""
    server = PrometheusServer([scraped_model_server.address], tmp_path_factory.mktemp("prometheus"))
    try:
        server.start()
    except PrometheusUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def healthy_scraped_model(scraped_model_server: ModelServer) -> Iterator[ModelServer]:
    """`scraped_model_server`, put back to healthy after the test whatever it did."""
    scraped_model_server.set_mode("healthy")
    try:
        yield scraped_model_server
    finally:
        scraped_model_server.set_mode("healthy")
