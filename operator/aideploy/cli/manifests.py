"""Manifests read the way `kubectl apply` sends them, so that `digest -f` computes the
digest of the spec the apiserver will store, before the object exists (GitOps).

PyYAML and the apiserver differ in ways that change the digest, and each is handled here:
YAML timestamps stay strings (kubectl does not turn them into dates); fields the CRD's
structural schema does not know are pruned, as the apiserver prunes them; nulls given for
fields the schema knows are dropped, as the apiserver drops them (nulls inside free-form
parts, like the pod template, are kept, as the apiserver keeps them). Integral floats
(`cpu: 1.0`) are the canonical JSON's business (aideploy.api.digest).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aideploy.api.constants import GROUP, KIND
from aideploy.api.crd import spec_schema
from aideploy.api.digest import spec_digest
from aideploy.cli.session import CliError, UsageError


class _KubectlLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: `2026-12-20T00:00:00Z` stays a string."""


_KubectlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def prune(value: Any, schema: Mapping[str, Any], path: str, dropped: list[str]) -> Any:
    """`value` as the apiserver stores it under a structural `schema`: unknown fields of
    objects with `properties` are removed (and their paths appended to `dropped`), and so
    are nulls for known, non-nullable fields."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is None:
            return value
        kept = {}
        for key, item in value.items():
            if key in properties:
                if item is None and not properties[key].get("nullable"):
                    continue  # the apiserver drops a null where the schema wants a value
                kept[key] = prune(item, properties[key], f"{path}.{key}", dropped)
            elif schema.get("x-kubernetes-preserve-unknown-fields"):
                kept[key] = item
            else:
                dropped.append(f"{path}.{key}")
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [
            prune(item, schema["items"], f"{path}[{i}]", dropped) for i, item in enumerate(value)
        ]
    return value


@dataclass(frozen=True)
class ManifestDigest:
    name: str
    digest: str
    dropped: list[str] = field(default_factory=list)


def _documents(text: str, source: str) -> Iterator[dict[str, Any]]:
    try:
        for document in yaml.load_all(text, Loader=_KubectlLoader):
            if isinstance(document, dict) and document.get("kind") == "List":
                yield from (i for i in document.get("items") or [] if isinstance(i, dict))
            elif isinstance(document, dict):
                yield document
    except yaml.YAMLError as error:
        raise CliError(f"{source} is not valid YAML: {error}") from None


def _is_aideployment(document: Mapping[str, Any]) -> bool:
    api_version = str(document.get("apiVersion") or "")
    return document.get("kind") == KIND and api_version.split("/")[0] == GROUP


def manifest_digests(file_name: str) -> list[ManifestDigest]:
    """The spec digest of every AIDeployment in the file ("-" for standard input)."""
    if file_name == "-":
        text, source = sys.stdin.read(), "standard input"
    else:
        try:
            text, source = Path(file_name).read_text(encoding="utf-8"), file_name
        except OSError as error:
            raise UsageError(f"cannot read {file_name}: {error.strerror}") from None
    schema = spec_schema()
    digests = []
    for document in _documents(text, source):
        if not _is_aideployment(document):
            continue
        name = str((document.get("metadata") or {}).get("name") or "<unnamed>")
        spec = document.get("spec")
        if not isinstance(spec, dict):
            raise CliError(f"AIDeployment {name} in {source} has no spec")
        dropped: list[str] = []
        stored = prune(spec, schema, "spec", dropped)
        try:
            digest = spec_digest(stored)
        except ValueError as error:
            raise CliError(f"AIDeployment {name} in {source}: {error}") from None
        digests.append(ManifestDigest(name=name, digest=digest, dropped=dropped))
    if not digests:
        raise CliError(f"no AIDeployment ({GROUP}) in {source}")
    return digests
