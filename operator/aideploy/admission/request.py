"""What an admission request says about itself, trusted over what its object says.

The apiserver puts the namespace of the request in `request.namespace`; the object in
it may carry none (a CREATE whose manifest names no namespace). A webhook that read the
namespace from the object judged such a CREATE in a namespace it does not watch by the
rules of one it does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def with_request_namespace(review: Mapping[str, Any]) -> dict[str, Any]:
    """The AdmissionReview with the request's namespace written into its objects."""
    result = copy.deepcopy(dict(review))
    request = result.get("request")
    if not isinstance(request, dict):
        return result
    namespace = request.get("namespace")
    if not namespace:
        return result  # a cluster-scoped resource: nothing to take
    for key in ("object", "oldObject"):
        body = request.get(key)
        if isinstance(body, dict):
            metadata = body.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata["namespace"] = namespace
    return result
