"""HTTP requests with hard deadlines, and network trouble put into words.

Every request runs under `asyncio.timeout`, which covers connecting, sending, waiting for
the headers and reading the body: a server that accepts a connection and never answers
costs the probe its timeout and nothing more. Failures become `TransportError`s whose text
is the sentence an SRE reads in the status ("GET http://x/v2/health/ready: connection
refused"), never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from aideploy.probes.base import Exchange, format_seconds

# A probe answer is a status document; anything this big is not one and is not kept.
MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_ERRNO: Final = re.compile(r"\[Errno (\d+)\]")


class TransportError(Exception):
    """No usable answer; `str()` is "METHOD URL: what went wrong"."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    time_limit: float,
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    timeout_text: str | None = None,
) -> Exchange:
    """Send one request and read the whole answer within `time_limit` seconds.

    `timeout_text` is how a timeout is quoted in the message (the spec's own "2s"), since
    a retry may get only the rest of the probe's budget.

    Raises TransportError for anything that is not an HTTP answer (refused, reset, DNS,
    TLS, timeout, an oversized body, an invalid URL). HTTP error statuses are answers.
    """
    request = f"{method} {url}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(time_limit):
            async with session.request(
                method, url, json=json_body, params=params, headers={"Accept": "application/json"}
            ) as response:
                body = await _read_body(response)
                status = response.status
    except TimeoutError:
        raise TransportError(
            f"{request}: timed out after {timeout_text or format_seconds(time_limit)}",
            timed_out=True,
        ) from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"{request}: {describe(exc)}") from exc
    except ValueError as exc:  # yarl rejects some malformed URLs before aiohttp sees them
        raise TransportError(f"{request}: invalid URL ({exc})") from exc
    except _BodyTooLargeError:
        raise TransportError(
            f"{request}: the answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB"
        ) from None
    return Exchange(method, url, status, body, time.monotonic() - started)


class _BodyTooLargeError(Exception):
    pass


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def describe(exc: BaseException) -> str:
    """A client error in a few lower-case words: "connection refused", "cannot resolve ..."."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate rejected ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_error_text(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL {str(exc.url)!r}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer broke off ({exc})"
    if isinstance(exc, OSError):
        return _os_error_text(exc)
    return str(exc) or type(exc).__name__


def _os_error_text(error: OSError) -> str:
    """strerror in lower case; asyncio's "Multiple exceptions" (one per address of a host
    name, e.g. ::1 and 127.0.0.1 for localhost) collapses to one when they agree."""
    if error.errno:
        return os.strerror(error.errno).lower()
    numbers = set(_ERRNO.findall(str(error)))
    if len(numbers) == 1:
        return os.strerror(int(numbers.pop())).lower()
    return str(error) or type(error).__name__
