"""A real S3 HTTP endpoint on loopback for the `evidence export --s3` tests: moto's
ThreadedMotoServer (moto[server], from PyPI). boto3 talks to it over real HTTP, with signed
requests, multipart uploads, metadata, versioning and Object Lock in COMPLIANCE mode.

It is the most faithful S3-compatible server the project's registries offer: MinIO's server
is packaged on none of them (PyPI, Debian and npm have only MinIO's client libraries), and
Ceph's RADOS gateway needs a Ceph cluster around it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1, stopped on exit."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The standard AWS chain, from the environment alone: test keys, a region, no ~/.aws,
    and no instance metadata lookup (which would be a request off this machine)."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
