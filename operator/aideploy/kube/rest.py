"""Plain-JSON requests through the official client's connection and authentication.

The decision logic works on the JSON the apiserver sends, so that nothing is lost or
renamed by generated model classes; this wrapper is all the operator needs of the client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
