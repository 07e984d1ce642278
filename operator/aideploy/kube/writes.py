"""Writes that the apiserver may refuse, named so that the object can say what refused them.

Every write the reconciler makes goes through `write`, which turns what a refusal raises
(an error answer, a timeout, no connection) into `WriteRefusedError` carrying a `WriteFailure`
in words. A status conflict (ConflictError) is not a refusal: it is decided again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from aideploy.kube.records import RecordConflictError
from aideploy.kube.rest import ApiError
from aideploy.logic.write_failure import WriteFailure

T = TypeVar("T")

#: What an unanswered or refused request raises (a TimeoutError and a ConnectionError
#: are what the socket says); a local OSError (a missing file) is a bug, and not hidden.
TRANSPORT = (ApiError, ApiException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
#: What a refused or unanswered write raises. Anything else is a bug, and is not hidden.
REFUSALS = (*TRANSPORT, RecordConflictError)


class WriteRefusedError(Exception):
    def __init__(self, failure: WriteFailure) -> None:
        super().__init__(f"{failure.action} of {failure.target}: {failure.detail}")
        self.failure = failure


def failure_of(error: BaseException, kind: str, name: str, action: str) -> WriteFailure:
    if isinstance(error, ApiError):
        return WriteFailure(kind, name, action, error.status, error.reason, error.message)
    if isinstance(error, ApiException):  # the client's own: status 0 is no answer (TLS)
        code = error.status or None
        return WriteFailure(kind, name, action, code, str(error.reason or ""), str(error))
    if isinstance(error, RecordConflictError):  # a name taken by another object's record
        return WriteFailure(kind, name, action, 409, "AlreadyExists", str(error))
    return WriteFailure(kind, name, action, None, type(error).__name__, str(error) or repr(error))


async def write(kind: str, name: str, action: str, call: Callable[..., T], *args: Any) -> T:
    try:
        return await asyncio.to_thread(call, *args)
    except REFUSALS as error:
        raise WriteRefusedError(failure_of(error, kind, name, action)) from error
