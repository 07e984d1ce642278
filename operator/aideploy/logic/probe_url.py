"""Where a probe that names no URL goes.

By default, the Service it checks, by its cluster DNS name. An operator that cannot reach
Services directly (outside the cluster, or in a network that keeps it out) is given a base
URL instead, which may name the Service: `{namespace}`, `{service}` and `{port}` are filled
in, so that one setting reaches every object's Services through a proxy, such as
`kubectl proxy`'s `http://127.0.0.1:8001/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy`
or the local demo's stand-in node. A base URL without placeholders sends every probe there.
"""

from __future__ import annotations

import re
from typing import Final

PLACEHOLDERS: Final = ("{namespace}", "{service}", "{port}")
_BRACED: Final = re.compile(r"\{[^{}]*\}")


def probe_base_url(
    namespace: str, service: str, port: int, cluster_domain: str, template: str | None
) -> str:
    """The base URL of `service` (in `namespace`, serving on `port`) for a probe."""
    if not template:
        return f"http://{service}.{namespace}.svc.{cluster_domain}:{port}"
    return (
        template.replace("{namespace}", namespace)
        .replace("{service}", service)
        .replace("{port}", str(port))
    )


def unknown_placeholders(template: str) -> list[str]:
    """Braced words a base URL template has that are not filled in (a typo, most likely:
    `{svc}` would be sent to the proxy as it is)."""
    return [word for word in _BRACED.findall(template) if word not in PLACEHOLDERS]
