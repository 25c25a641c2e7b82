"""A deployment that reads online features on Azure: its groups, the online store and its identity in its environment.

A variant with `online_features` (templates/serving_api.py) reads the Azure ML feature store's
online store, the Redis cache the features stack attaches, per request (serving/online_store_azureml.py).
Its deployment gets `ONLINE_FEATURES` (OnlineDeploymentProperties.environmentVariables) naming:

- the cache's host and TLS port, reached through the workspace's managed-network private endpoint
  rule to it (training.py, `online-store`);
- the endpoint's user-assigned identity (client id for its tokens, object id as the Redis user),
  whose custom data access policy allows HMGET on this feature store's keys only, and whose custom
  role reads the feature set versions (features.py);
- the feature store's guid and, per group, its feature set (named as the group, version 1), that
  version's ARM id and the features stored msgpack-encoded (the group's fractional ones, Double
  in the feature set).

Azure ML gives one identity to all deployments of an endpoint, and the platform gives one to all
its endpoints (the data stack's `endpoint` identity): unlike SageMaker's per-variant role, the
read is bounded by the feature store, not by the groups a variant names.
"""

from __future__ import annotations

from typing import Any

from ..context import StackContext
from ..serving_pins import Pinned
from ..templates.serving import ModelServing
from ..templates.serving_api import stored_features
from ..terraform import Value, jsonencode

FEATURE_SET_VERSION = "1"  # features.py creates version 1 of each group's feature set


def online_features_environment(t: ModelServing, ctx: StackContext, p: Pinned) -> dict[str, Value]:
    """The deployment's environment variables: `ONLINE_FEATURES` for a variant that reads them, else none."""
    online = p.variant.online_features
    if online is None:
        return {}
    assert t.features is not None  # templates/serving_api.py: online_feature_problems
    data = t.training.data
    version_ids = ctx.upstream_output(t.features, "feature_set_version_ids")
    groups: list[dict[str, Any]] = []
    for name in online.groups:
        group = next(g for g in t.features.groups if g.name == name)
        features = stored_features(t, name)
        groups.append({
            "name": name, "version": FEATURE_SET_VERSION, "version_id": version_ids[name],
            "record_id": group.record_id, "features": features,
            "encoded": [f.name for f in group.features if f.name in features and f.type == "fractional"]})
    return {"ONLINE_FEATURES": jsonencode({
        "store": "azureml",
        "redis_host": ctx.upstream_output(t.features, "online_store_hostname"),
        "redis_port": ctx.upstream_output(t.features, "online_store_ssl_port"),
        "identity_client_id": ctx.upstream_output(data, "endpoint_identity_client_id"),
        "identity_object_id": ctx.upstream_output(data, "endpoint_identity_principal_id"),
        "feature_store_guid": ctx.upstream_output(t.features, "feature_store_guid"),
        "groups": groups,
        "timeout_ms": online.timeout_ms,
    })}


__all__ = ["online_features_environment"]
