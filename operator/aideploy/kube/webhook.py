"""kopf's webhook server, with the admission request's namespace put into its objects
before any handler sees them (kopf takes a handler's `namespace` from the object)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import kopf

from aideploy.admission.request import with_request_namespace


class NamespacedWebhookServer(kopf.WebhookServer):
    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async def judged_in_its_namespace(request: Any, **kwargs: Any) -> Any:
            return await fn(with_request_namespace(request), **kwargs)  # type: ignore[arg-type]

        # aclosing: the server's own cleanup runs when kopf stops this one, not at GC time.
        served = cast(
            AsyncGenerator[kopf.WebhookClientConfig, None],
            super().__call__(judged_in_its_namespace),  # an async generator in kopf
        )
        async with contextlib.aclosing(served) as configs:
            async for client_config in configs:
                yield client_config
