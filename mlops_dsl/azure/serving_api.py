"""ModelServing(api=...) on Azure: what the managed online endpoint offers applications.

The endpoint is private (`publicNetworkAccess: Disabled`, serving.py) and authenticates callers
with Entra ID tokens (`authMode: AADToken`). Its scoring URI is exported (`scoring_uri`).

- `Api(access="private")`: that URI is the API, reached from the platform's network (or one peered
  with it) through the workspace's private endpoint, with a token for `https://ml.azure.com`.
- `Api(access="public")`: API Management in the platform's network (External VNet mode, its own
  subnet and NSG with the rules API Management's VNet reference requires, a Standard public IP),
  `POST /<serving>/score` forwarded to the scoring URI over the private endpoint. Its policy checks
  the caller's Entra ID token (validate-jwt, `Api.audience`), limits calls per subscription key
  (rate-limit-by-key, quota-by-key) and calls the endpoint with API Management's own identity
  (authentication-managed-identity), which a custom role allows only the endpoint's score action.
  Gateway logs go to the platform's Log Analytics workspace.

Online features at inference are the deployments' own (serving_online_features.py).
"""

from __future__ import annotations

import ipaddress
import math
from xml.sax.saxutils import escape

from ..context import StackContext
from ..templates.serving import ModelServing
from ..templates.serving_api import Api
from ..terraform import Block, Call, CheckovSkip, Expr, Output, Resource, interp
from .common import compact, location, tagged


def render_api(t: ModelServing, ctx: StackContext, endpoint: Resource) -> None:
    """The scoring URI, and API Management for a public API."""
    api = t.api
    if api is None:
        return
    # azapi exports only what is named: the endpoint's scoring URI, read after it is created.
    endpoint.body["response_export_values"] = ["properties.scoringUri"]
    scoring_uri = endpoint.attr("output.properties.scoringUri")
    ctx.stack.add(Output("scoring_uri", scoring_uri,
                         description="Private scoring URI: POST with an Entra ID token for https://ml.azure.com"))
    if api.access == "public":
        _api_management(t, ctx, api, endpoint, scoring_uri)


# API Management's VNet reference ("Virtual network configuration reference: API Management",
# stv2, External mode): what the subnet's NSG must allow. Clients reach the gateway on 443 only.
NSG_RULES = (
    ("clients", "Inbound", "443", "Internet", "VirtualNetwork"),
    ("management", "Inbound", "3443", "ApiManagement", "VirtualNetwork"),
    ("load-balancer", "Inbound", "6390", "AzureLoadBalancer", "VirtualNetwork"),
    ("storage", "Outbound", "443", "VirtualNetwork", "Storage"),
    ("sql", "Outbound", "1433", "VirtualNetwork", "Sql"),
    ("key-vault", "Outbound", "443", "VirtualNetwork", "AzureKeyVault"),
    ("monitor", "Outbound", "1886,443", "VirtualNetwork", "AzureMonitor"),
)
SCORE_ACTION = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action"
ML_AUDIENCE = "https://ml.azure.com"  # the token audience managed online endpoints accept (AADToken)
APIM_SKIPS = (
    CheckovSkip("CKV_AZURE_174", "access='public': the API is for callers on the internet; each request "
                                 "needs an Entra ID token and a subscription key"),
    CheckovSkip("CKV_AZURE_152", "callers authenticate with Entra ID tokens (validate-jwt), not client "
                                 "certificates"),
)


def _policy(t: ModelServing, ctx: StackContext, api: Api) -> str:
    azure = ctx.namespace.azure
    assert azure is not None and api.audience is not None
    quota = (f'    <quota-by-key calls="{api.daily_quota}" renewal-period="86400" '
             f'counter-key="@(context.Subscription.Id)" />\n') if api.daily_quota else ""
    return (
        "<policies>\n  <inbound>\n    <base />\n"
        '    <validate-jwt header-name="Authorization" failed-validation-httpcode="401" require-scheme="Bearer">\n'
        f'      <openid-config url="https://login.microsoftonline.com/{escape(azure.tenant_id)}/v2.0/'
        '.well-known/openid-configuration" />\n'
        f"      <audiences>\n        <audience>{escape(api.audience)}</audience>\n      </audiences>\n"
        "    </validate-jwt>\n"
        f'    <rate-limit-by-key calls="{math.ceil(api.rate_limit)}" renewal-period="1" '
        'counter-key="@(context.Subscription.Id)" />\n'
        f"{quota}"
        f'    <authentication-managed-identity resource="{ML_AUDIENCE}" />\n'
        "  </inbound>\n  <backend>\n    <base />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n"
        "  <on-error>\n    <base />\n  </on-error>\n</policies>\n")


def _api_management(t: ModelServing, ctx: StackContext, api: Api, endpoint: Resource, scoring_uri: Expr) -> None:
    """API Management in External VNet mode in front of the private endpoint (module docstring)."""
    if api.audience is None:
        raise ctx.error("api.audience", "a public API on Azure checks each caller's Entra ID token: give the "
                                        "audience of the API's app registration (api://... or its client id)")
    if not ctx.namespace.alert_emails:
        raise ctx.error("api", "API Management needs a publisher e-mail: set alerts.emails for namespace "
                               f"'{ctx.namespace.name}' in namespaces.yaml")
    data = t.training.data
    rg = ctx.upstream_output(data, "resource_group_name")
    # The data stack's VNet (network.py: `vnet-<platform>-<namespace>`) uses the first two subnets of
    # this split for workloads and private endpoints; API Management takes the third.
    network = ipaddress.ip_network(data.vpc_cidr)
    cidr = list(network.subnets(new_prefix=min(network.prefixlen + 4, 28)))[2]
    subnet = Resource("azurerm_subnet", "apim", {
        "name": f"snet-apim-{t.name}",
        "resource_group_name": rg,
        "virtual_network_name": f"vnet-{ctx.name}",
        "address_prefixes": [str(cidr)],
    })
    nsg = Resource("azurerm_network_security_group", "apim", tagged(ctx, {
        "name": f"nsg-{ctx.name}-apim-{t.name}", "location": location(ctx), "resource_group_name": rg}))
    rules = [Resource("azurerm_network_security_rule", f"apim_{name.replace('-', '_')}", {
        "name": f"apim-{name}",
        "network_security_group_name": nsg.attr("name"),
        "resource_group_name": rg,
        "priority": 100 + 10 * i,
        "direction": direction,
        "access": "Allow",
        "protocol": "Tcp",
        "source_port_range": "*",
        **({"destination_port_ranges": ports.split(",")} if "," in ports else {"destination_port_range": ports}),
        "source_address_prefix": source,
        "destination_address_prefix": destination,
    }) for i, (name, direction, ports, source, destination) in enumerate(NSG_RULES)]
    association = Resource("azurerm_subnet_network_security_group_association", "apim", {
        "subnet_id": subnet.attr("id"), "network_security_group_id": nsg.attr("id")})
    # stv2 in a VNet needs a Standard, static public IP with a DNS label ("Deploy API Management in
    # an external virtual network").
    label = f"apim-{compact(ctx.platform)[:20]}-{compact(ctx.namespace.name)[:8]}-{compact(t.name)[:10]}"
    ip = Resource("azurerm_public_ip", "apim", tagged(ctx, {
        "name": f"pip-{ctx.name}-apim-{t.name}", "location": location(ctx), "resource_group_name": rg,
        "sku": "Standard", "allocation_method": "Static", "domain_name_label": label}))
    service = Resource("azurerm_api_management", "inference", tagged(ctx, {
        "name": label,
        "location": location(ctx),
        "resource_group_name": rg,
        "publisher_name": f"{ctx.platform} ({ctx.namespace.name})",
        "publisher_email": ctx.namespace.alert_emails[0],
        "sku_name": api.apim_sku,
        "virtual_network_type": "External",
        "virtual_network_configuration": Block({"subnet_id": subnet.attr("id")}),
        "public_ip_address_id": ip.attr("id"),
        "public_network_access_enabled": True,
        "min_api_version": "2021-08-01",  # management API calls older than this could read secrets
        "identity": Block({"type": "SystemAssigned"}),
        "security": Block({name: False for name in (
            "backend_ssl30_enabled", "backend_tls10_enabled", "backend_tls11_enabled", "frontend_ssl30_enabled",
            "frontend_tls10_enabled", "frontend_tls11_enabled", "triple_des_ciphers_enabled")}),
    }), depends_on=(association, *rules), skips=APIM_SKIPS)
    role = Resource("azurerm_role_definition", "score", {
        "name": f"{ctx.name}-{t.name}-score",
        "scope": endpoint.attr("id"),
        "description": f"Score the online endpoint of {t.name}, nothing else (API Management's identity)",
        "permissions": Block({"actions": [SCORE_ACTION]}),
        "assignable_scopes": [endpoint.attr("id")],
    })
    grant = Resource("azurerm_role_assignment", "apim_score", {
        "scope": endpoint.attr("id"), "role_definition_id": role.attr("role_definition_resource_id"),
        "principal_id": service.attr("identity[0].principal_id"),
        "principal_type": "ServicePrincipal", "skip_service_principal_aad_check": True})
    inference = Resource("azurerm_api_management_api", "inference", {
        "name": t.name, "resource_group_name": rg, "api_management_name": service.attr("name"),
        "revision": "1", "display_name": f"{ctx.platform} {t.name}", "path": t.name, "protocols": ["https"],
        "service_url": Call("trimsuffix", (scoring_uri, "/score")),
        "subscription_required": True,
    })
    operation = Resource("azurerm_api_management_api_operation", "score", {
        "operation_id": "score", "api_name": inference.attr("name"), "api_management_name": service.attr("name"),
        "resource_group_name": rg, "display_name": "Score", "method": "POST", "url_template": "/score",
    })
    policy = Resource("azurerm_api_management_api_policy", "inference", {
        "api_name": inference.attr("name"), "api_management_name": service.attr("name"),
        "resource_group_name": rg, "xml_content": _policy(t, ctx, api)}, depends_on=(grant,))
    diagnostics = Resource("azurerm_monitor_diagnostic_setting", "apim", {
        "name": "diag-apim",
        "target_resource_id": service.attr("id"),
        "log_analytics_workspace_id": ctx.upstream_output(data, "log_analytics_workspace_id"),
        "enabled_log": [Block({"category_group": "allLogs"})],
    })
    ctx.stack.add(subnet, nsg, *rules, association, ip, service, role, grant, inference, operation, policy,
                  diagnostics)
    ctx.stack.add(Output("api_url", interp("", service.attr("gateway_url"), f"/{t.name}/score"),
                         description="POST with an Entra ID token for Api.audience and a subscription key"))

__all__ = ["render_api"]
