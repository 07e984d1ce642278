"""Plain-JSON requests through the official client's connection and authentication.

The decision logic works on the JSON the apiserver sends, so that nothing is lost or
renamed by generated model classes; this wrapper is all the operator needs of the client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from kubernetes import client


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

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any] | None:
        """Returns the decoded JSON answer; None for 404 on GET; raises ApiError else."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        _method, url, header_params, serialized, post_params = self._api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(
            method,
            url,
            header_params=header_params,
            body=serialized,
            post_params=post_params,
            _request_timeout=self._timeout,
        )
        raw = response.read() if response.data is None else response.data  # type: ignore[no-untyped-call]
        if method == "GET" and response.status == 404:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw or "")
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
