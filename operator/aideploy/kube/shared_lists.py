"""Reads that many reconciles waiting at the same time share: one list per namespace.

A list is issued only after every request it answers was made, so each caller gets an
answer as fresh as its own read would have been. A subclass says what one list costs
and when it is not worth it (then each caller makes its own reads: `None`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from typing import Generic, TypeVar

Answer = TypeVar("Answer")

#: Fewer requests than this waiting at once make their own reads.
MIN_BATCH = 2


class SharedLists(Generic[Answer]):
    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[Answer | None]]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}

    async def read(self, namespace: str) -> Answer | None:
        """The namespace's list, made after this call; None when the caller should make
        its own reads."""
        future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(namespace, []).append(future)
        if namespace not in self._draining:
            self._draining[namespace] = asyncio.create_task(
                self._drain(namespace),
                name=f"{type(self).__name__}:{namespace}",
                context=contextvars.Context(),  # not the first caller's
            )
        return await future

    async def _list(self, namespace: str, requests: int) -> Answer | None:
        """One list answering `requests` callers, or None (they read on their own)."""
        raise NotImplementedError

    async def _drain(self, namespace: str) -> None:
        """Serve the waiting requests one batch at a time; those made while a list is in
        flight wait for the next one."""
        try:
            while True:
                await asyncio.sleep(0)  # requests made in the same turn join the batch
                batch = self._waiting.pop(namespace, [])
                if not batch:
                    return
                try:
                    listed = (
                        None if len(batch) < MIN_BATCH else await self._list(namespace, len(batch))
                    )
                except Exception as error:  # each caller sees what its reads would have
                    for future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for future in batch:
                    if not future.done():
                        future.set_result(listed)
        finally:
            del self._draining[namespace]
            for future in self._waiting.pop(namespace, []):  # only when cancelled
                future.cancel()

    async def stop(self) -> None:
        for task in list(self._draining.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
