"""Plain-JSON requests through the official client's connection and authentication.

The decision logic works on the JSON the apiserver sends, so that nothing is lost or
renamed by generated model classes; this wrapper is all the operator needs of the client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any, Final
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client

#: How long a read token is used before the configuration is asked again.
CREDENTIALS_SECONDS: Final = 5.0


def _plain(value: object) -> str:
    """What the client's serializer made of dates, the one non-JSON type a body holds."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ApiError(Exception):
    """A non-2xx answer, with the apiserver's own message (which says what to fix)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Rest:
    def __init__(self, api_client: client.ApiClient, timeout_seconds: float = 30.0) -> None:
        self._api_client = api_client
        self._timeout = timeout_seconds
        self._host = str(api_client.configuration.host).rstrip("/")
        self._auth_headers: dict[str, str] = {}
        self._credentials_at: float | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any] | None:
        """Returns the decoded JSON answer; None for 404 on GET; raises ApiError else.

        Straight to the client's connection pool: its generated request path re-reads the
        credentials, scans the proxy environment and walks the body once more on every
        call: about a tenth of the operator's CPU at a cold start of thousands (profiled:
        half of the time spent in requests went to that path, not to the connection)."""
        headers = {**self._api_client.default_headers, "Accept": accept}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, str | bytes) else json.dumps(body, default=_plain)
        url = self._host + path
        if query:
            url += "?" + urlencode(list(query), quote_via=quote)
        sent = self._credentials()
        response = self._send(method, url, {**headers, **sent}, data)
        if response.status == 401:
            # Perhaps a token rotated since it was last read: sent again only if the
            # configuration now gives another one.
            self._credentials_at = None
            if (fresh := self._credentials()) != sent:
                response = self._send(method, url, {**headers, **fresh}, data)
        if method == "GET" and response.status == 404:
            return None
        text = response.data.decode("utf-8") if response.data else ""
        if not 200 <= response.status < 300:
            try:
                status = json.loads(text)
                raise ApiError(
                    response.status, str(status.get("reason", "")), str(status.get("message", text))
                )
            except ValueError:
                raise ApiError(response.status, "", text) from None
        decoded: dict[str, Any] = json.loads(text) if text else {}
        return decoded

    def list_all(
        self, path: str, query: Sequence[tuple[str, str]] = (), page_size: int | None = 500
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection, a page of `page_size` at a time (None: one answer,
        for a list from the watch cache, which ignores `limit`), and the list's
        resourceVersion (a watch starts from it)."""
        items: list[dict[str, Any]] = []
        version = ""
        token = ""
        while True:
            paging = [("limit", str(page_size))] if page_size else []
            paging += [("continue", token)] if token else []
            page = self.request("GET", path, query=[*query, *paging]) or {}
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            version = str(metadata.get("resourceVersion") or version)
            token = str(metadata.get("continue") or "")
            if not token:
                return items, version

    def _send(
        self, method: str, url: str, headers: dict[str, str], data: str | bytes | None
    ) -> urllib3.BaseHTTPResponse:
        pool: urllib3.PoolManager = self._api_client.rest_client.pool_manager
        return pool.request(
            method,
            url,
            body=data,
            headers=headers,
            timeout=urllib3.Timeout(total=self._timeout),
            preload_content=True,
        )

    def _credentials(self) -> dict[str, str]:
        """The Authorization header, read through the client's configuration (which runs
        exec plugins and re-reads rotated service-account tokens on its own schedule) at
        most once every few seconds, and again after a 401."""
        now = time.monotonic()
        if self._credentials_at is None or now - self._credentials_at > CREDENTIALS_SECONDS:
            setting = self._api_client.configuration.auth_settings().get("BearerToken")
            value = setting.get("value") if setting else None
            self._auth_headers = {"Authorization": str(value)} if value else {}
            self._credentials_at = now
        return self._auth_headers

    def watch(
        self, path: str, query: Sequence[tuple[str, str]], timeout_seconds: int
    ) -> Iterator[dict[str, Any]]:
        """The watch events of a collection (`{"type": ..., "object": ...}`), as the
        apiserver sends them, one JSON document a line, until it ends the watch after
        `timeout_seconds` or the connection drops. Raises ApiError on a non-2xx answer."""
        _method, url, header_params, _body, _post = self._api_client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=[*query, ("watch", "true"), ("timeoutSeconds", str(timeout_seconds))],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(
            "GET",
            url,
            header_params=header_params,
            # Connecting is bounded like any request; reading waits out the watch.
            _request_timeout=(self._timeout, timeout_seconds + self._timeout),
        )
        raw = response.response  # urllib3's, unread: the client does not preload it
        try:
            if not 200 <= response.status < 300:
                text = raw.data.decode("utf-8", "replace")
                try:
                    status = json.loads(text)
                    raise ApiError(
                        response.status,
                        str(status.get("reason", "")),
                        str(status.get("message", text)),
                    )
                except ValueError:
                    raise ApiError(response.status, "", text) from None
            pending = b""
            for chunk in raw.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event: dict[str, Any] = json.loads(line)
                        yield event
        finally:
            raw.release_conn()
