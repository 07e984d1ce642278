"""Rest.request talks to the client's connection pool itself: the URL, the body, the
credentials (read at most every few seconds) and what happens on a 401."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from aideploy.kube import rest as rest_module
from aideploy.kube.rest import ApiError, Rest


@dataclass
class Answer:
    status: int
    data: bytes = b"{}"


@dataclass
class FakePool:
    answers: list[Answer]
    sent: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.sent.append({"method": method, "url": url, **kwargs})
        return self.answers.pop(0) if self.answers else Answer(200)


class Tokens:
    """Stands in for the configuration's refresh hook: each read may see a new token."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.reads = 0

    def __call__(self, configuration: client.Configuration) -> None:
        self.reads += 1
        value = self.values[min(self.reads - 1, len(self.values) - 1)]
        configuration.api_key = {"BearerToken": value}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}


def make_rest(
    pool: FakePool, tokens: Tokens | None = None, host: str = "https://api.example:6443/"
) -> Rest:
    configuration = client.Configuration(host=host)
    if tokens is not None:  # as the kubeconfig loader leaves it: a token, and the hook
        configuration.api_key = {"BearerToken": "as loaded"}
        configuration.refresh_api_key_hook = tokens
    api = client.ApiClient(configuration)
    api.rest_client.pool_manager = pool  # type: ignore[assignment]
    return Rest(api)


@pytest.mark.parametrize(
    ("path", "query", "url"),
    [
        ("/api/v1/namespaces/a/pods", [], "https://api.example:6443/api/v1/namespaces/a/pods"),
        (
            "/apis/apps/v1/namespaces/a/deployments",
            [("labelSelector", "app in (x,y),tier!=db"), ("limit", "500")],
            "https://api.example:6443/apis/apps/v1/namespaces/a/deployments"
            "?labelSelector=app%20in%20%28x%2Cy%29%2Ctier%21%3Ddb&limit=500",
        ),
        (
            "/api/v1/events",
            [("continue", "eyJ2Ijo+/=")],
            "https://api.example:6443/api/v1/events?continue=eyJ2Ijo%2B%2F%3D",
        ),
    ],
)
def test_url_is_the_host_the_path_and_the_quoted_query(
    path: str, query: list[tuple[str, str]], url: str
) -> None:
    pool = FakePool([])
    make_rest(pool).request("GET", path, query=query)
    assert pool.sent[0]["url"] == url


def test_body_is_json_with_dates_as_iso_text_and_a_string_body_is_sent_as_it_is() -> None:
    pool = FakePool([])
    rest = make_rest(pool)
    when = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    rest.request("POST", "/x", body={"at": when, "n": [1, 2]})
    rest.request("PATCH", "/x", body="a: 1\n", content_type="application/apply-patch+yaml")
    first, second = pool.sent
    assert json.loads(first["body"]) == {"at": "2026-12-06T01:02:03+00:00", "n": [1, 2]}
    assert first["headers"]["Content-Type"] == "application/json"
    assert second["body"] == "a: 1\n"
    assert second["headers"]["Content-Type"] == "application/apply-patch+yaml"


def test_a_body_json_cannot_carry_is_refused_before_anything_is_sent() -> None:
    pool = FakePool([])
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        make_rest(pool).request("POST", "/x", body={"thing": object()})
    assert pool.sent == []


def test_answers_404_on_get_is_none_and_an_error_carries_the_apiservers_message() -> None:
    status = {"kind": "Status", "reason": "Forbidden", "message": "quota exceeded"}
    pool = FakePool([Answer(404), Answer(403, json.dumps(status).encode())])
    rest = make_rest(pool)
    assert rest.request("GET", "/x") is None
    with pytest.raises(ApiError) as refused:
        rest.request("POST", "/x", body={})
    assert (refused.value.status, refused.value.reason, refused.value.message) == (
        403,
        "Forbidden",
        "quota exceeded",
    )


def test_the_token_is_read_once_for_many_requests_and_again_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(rest_module.time, "monotonic", lambda: now[0])
    tokens = Tokens("one", "two")
    pool = FakePool([])
    rest = make_rest(pool, tokens)
    reads_before = tokens.reads
    for _ in range(10):
        rest.request("GET", "/x")
    assert tokens.reads - reads_before == 1
    now[0] += rest_module.CREDENTIALS_SECONDS + 1
    rest.request("GET", "/x")
    assert [s["headers"]["Authorization"] for s in pool.sent] == ["Bearer one"] * 10 + [
        "Bearer two"
    ]


def test_a_401_is_sent_again_only_with_a_token_that_changed() -> None:
    rotated = FakePool([Answer(401), Answer(200, b'{"ok": true}')])
    assert make_rest(rotated, Tokens("old", "new")).request("GET", "/x") == {"ok": True}
    assert [s["headers"]["Authorization"] for s in rotated.sent] == ["Bearer old", "Bearer new"]

    same = FakePool([Answer(401, b'{"reason": "Unauthorized", "message": "no"}')])
    with pytest.raises(ApiError) as refused:
        make_rest(same, Tokens("old")).request("GET", "/x")
    assert refused.value.status == 401
    assert len(same.sent) == 1

    certificates = FakePool([Answer(401, b"{}")])
    with pytest.raises(ApiError):
        make_rest(certificates).request("GET", "/x")
    assert len(certificates.sent) == 1
    assert "Authorization" not in certificates.sent[0]["headers"]


def page(names: list[str], token: str = "", version: str = "7") -> Answer:
    body = {"items": [{"metadata": {"name": n}} for n in names]}
    body["metadata"] = {"continue": token, "resourceVersion": version}  # type: ignore[assignment]
    return Answer(200, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("page_size", "expected_queries"),
    [
        (2, ["?labelSelector=a%3Db&limit=2", "?labelSelector=a%3Db&limit=2&continue=next"]),
        # From the watch cache: no limit, and so no second page asked for.
        (None, ["?labelSelector=a%3Db"]),
    ],
)
def test_list_all_follows_the_pages_and_gives_the_list_s_version(
    page_size: int | None, expected_queries: list[str]
) -> None:
    answers = [page(["a", "b"], token="next")] if page_size else []
    pool = FakePool([*answers, page(["c"], version="9")])
    items, version = make_rest(pool).list_all(
        "/api/v1/services", [("labelSelector", "a=b")], page_size
    )
    queries = [sent["url"].split("services", 1)[1] for sent in pool.sent]
    assert queries == expected_queries
    assert [i["metadata"]["name"] for i in items] == (["a", "b", "c"] if page_size else ["c"])
    assert version == "9"
