"""One notification to one sink over HTTP: a CloudEvent in structured mode (built by the
CloudEvents SDK), or a chat webhook's JSON body.

The URL is a secret: no outcome, log line or exception text made here contains it (an
aiohttp error's text may, so only the error's type is kept).
"""

from __future__ import annotations

import asyncio
import json
import socket
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Final, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from aideploy.api.notifier import Sink, Template
from aideploy.api.times import parse_time
from aideploy.logic.notify_events import Notification
from aideploy.logic.notify_render import cloudevent, webhook_body

TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
#: How much of a sink's answer is read: its status is what counts.
BODY_LIMIT: Final = 64 * 1024
#: 4xx answers that say "later", not "never".
_RETRY_LATER: Final = frozenset({408, 425, 429})
_FLAGS: Final = socket.AI_ADDRCONFIG & getattr(socket, "AI_MASK", -1)
_NAME_FLAGS: Final = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV


class ExecutorResolver(AbstractResolver):
    """aiohttp's threaded resolver, but on the given executor (the notifications' own
    threads): aiohttp's ThreadedResolver calls getaddrinfo on the loop's default
    executor, the one the reconciles use, where a slow DNS would take their threads."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        lookup = partial(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM, 0, _FLAGS)
        infos = await loop.run_in_executor(self._executor, lookup)
        results: list[ResolveResult] = []
        for af, _, proto, _, address in infos:
            if af == socket.AF_INET6 and len(address) < 4:
                continue  # IPv6 not supported by this Python build
            address_host, address_port = str(address[0]), int(address[1])
            if af == socket.AF_INET6:
                v6 = cast(tuple[str, int, int, int], address)
                if v6[3]:  # link-local: its scope is part of the host
                    name = partial(socket.getnameinfo, v6, _NAME_FLAGS)
                    resolved, service = await loop.run_in_executor(self._executor, name)
                    address_host, address_port = resolved, int(service)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address_host,
                    port=address_port,
                    family=af,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        return results

    async def close(self) -> None:
        pass


class Outcome(StrEnum):
    DELIVERED = "delivered"
    #: Not delivered this time (unreachable, 5xx, timeout): retried with backoff.
    FAILED = "failed"
    #: The sink refused it (4xx): retried too, slowly, and reported.
    REJECTED = "rejected"


@dataclass(frozen=True)
class Sent:
    outcome: Outcome
    #: "HTTP 503", "ClientConnectorError": never the URL.
    detail: str

    @property
    def answered(self) -> bool:
        """Whether the sink answered (with an HTTP status), rather than not at all."""
        return self.detail.startswith("HTTP ")


def body_of(n: Notification, sink: Sink) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the request that delivers `n` to `sink`."""
    if sink.cloud_events is not None:
        attributes, data = cloudevent(n)
        event = CloudEvent(
            attributes={**attributes, "time": parse_time(attributes["time"])}, data=data
        )
        message = to_structured_event(event)
        return dict(message.headers), message.body
    template = sink.webhook.template if sink.webhook is not None else Template.CLOUDEVENT
    body = json.dumps(webhook_body(n, template), sort_keys=True).encode()
    return {"content-type": "application/json"}, body


async def send(session: aiohttp.ClientSession, url: str, n: Notification, sink: Sink) -> Sent:
    headers, body = body_of(n, sink)
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
        ) as response:
            # Up to 64 KiB of the answer, so a short one frees the connection for the
            # next event; the rest of a longer one is not read (the connection is closed).
            await response.content.read(BODY_LIMIT)
            status = response.status
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as e:
        # Not an outage: no retry makes the URL valid. Only the type: the text is the URL.
        return Sent(Outcome.REJECTED, f"an invalid URL ({type(e).__name__})")
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
        return Sent(Outcome.FAILED, type(e).__name__)
    if 200 <= status < 300:
        return Sent(Outcome.DELIVERED, f"HTTP {status}")
    if 400 <= status < 500 and status not in _RETRY_LATER:
        return Sent(Outcome.REJECTED, f"HTTP {status}")
    return Sent(Outcome.FAILED, f"HTTP {status}")
