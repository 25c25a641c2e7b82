"""ModelServing(api=...) and online features on Azure: what the managed online endpoint offers applications.

The endpoint is private (`publicNetworkAccess: Disabled`, serving.py) and authenticates callers
with Entra ID tokens (`authMode: AADToken`). With `Api(access="private")` that is the API: the
endpoint's scoring URI, exported here, reached from the platform's network (or one peered with it)
through the workspace's private endpoint, with a token for `https://ml.azure.com` (README: An
inference API).

Not rendered yet, and refused with a blueprint error rather than half-built:
- `Api(access="public")`: API Management in the platform's network (a dedicated subnet in the
  VNet, the API's backend the scoring URI over the private endpoint, its managed identity granted
  the endpoint's score action, validate-jwt and rate-limit policies, diagnostics to Log Analytics).
- `Variant(online_features=...)`: the feature store's online store (Azure Cache for Redis,
  features.py) is materialized, but the server reads online features only from SageMaker's
  Feature Store runtime; the Redis layout is the azureml-featurestore SDK's, which the serving
  image does not carry.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.serving import ModelServing
from ..terraform import Output, Resource


def render_api(t: ModelServing, ctx: StackContext, endpoint: Resource) -> None:
    """The scoring URI as the private API; a blueprint error for what Azure does not render yet."""
    for i, v in enumerate([*t.variants, *([t.shadow] if t.shadow else [])]):
        if v.online_features is not None:
            field = f"variants[{i}].online_features" if i < len(t.variants) else "shadow.online_features"
            raise ctx.error(field, "online features at inference are served on AWS only: on Azure the online store "
                                   "(Azure Cache for Redis) is materialized, but the serving image has no reader of "
                                   "its layout; send every feature in the request, or serve this platform on AWS")
    api = t.api
    if api is None:
        return
    if api.access == "public":
        raise ctx.error("api.access", "a public API on Azure needs API Management in the platform's network, which "
                                      "is not rendered yet; use access='private' (the endpoint's private scoring URI, "
                                      "README: An inference API) or serve the public API from AWS")
    # azapi exports only what is named: the endpoint's scoring URI, read after it is created.
    endpoint.body["response_export_values"] = ["properties.scoringUri"]
    ctx.stack.add(Output("scoring_uri", endpoint.attr("output.properties.scoringUri"),
                         description="Private scoring URI: POST with an Entra ID token for https://ml.azure.com"))


__all__ = ["render_api"]
