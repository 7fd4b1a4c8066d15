"""Where an object lives in the store: Kubernetes' own key layout.

`/registry/<kind>/<namespace>/<name>`, or `/registry/<kind>/<name>` for a
cluster-scoped kind (namespace None), so that "all pods" and "all pods in a
namespace" are both prefix ranges.
"""

from __future__ import annotations


def object_key(kind: str, namespace: str | None, name: str) -> str:
    if namespace is None:
        return f"/registry/{kind}/{name}"
    return f"/registry/{kind}/{namespace}/{name}"


def kind_prefix(kind: str, namespace: str | None = None) -> str:
    """The prefix that ranges over every object of `kind` (in `namespace`)."""
    if namespace is None:
        return f"/registry/{kind}/"
    return f"/registry/{kind}/{namespace}/"
