"""The Azure serving stack's guarded rollout step: Terraform creates the deployments, the step moves traffic.

Azure ML has no guarded update of its own, so within one apply a new model version or image goes
out as its own deployment (a new resource, created before the old one goes), and
`terraform_data.rollout` runs `mlops update-online-endpoint` (mlops_dsl/azureml/rollout.py): it
smoke-tests each deployment through the `azureml-model-deployment` header with a request built
from the dataset's columns, moves traffic in the blueprint's steps while the latency and 5xx alerts
are watched, and ends at the blueprint's weights, so the next apply changes nothing (Terraform does
not set the traffic map). On failure the previous map is restored and the apply fails with the
step's message; the old deployments' destroy waits for the step, so they are removed after the
bake time in the same run, or kept when it failed. A manual namespace's one approval of the plan
covers the whole rollout.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import StackContext
from ..templates.serving import BlueGreen, ModelServing
from ..terraform import Block, Resource, interp, jsonencode

SMOKE_FILE = ".smoke-request.json"


def policy(t: ModelServing) -> dict[str, Any]:
    """The blueprint's deployment as the step's policy. A Rolling update has no Azure counterpart
    between deployments: its batches become LINEAR traffic steps of `batch_percent`, without a bake."""
    d = t.deployment
    if isinstance(d, BlueGreen):
        return {"mode": d.traffic, "canary_percent": d.canary_percent, "linear_step_percent": d.linear_step_percent,
                "wait_seconds": d.wait_seconds, "bake_seconds": d.termination_wait_seconds}
    return {"mode": "LINEAR", "linear_step_percent": max(d.batch_percent, 1), "wait_seconds": d.wait_seconds,
            "bake_seconds": 0}


def smoke_request(t: ModelServing) -> dict[str, Any]:
    """One record with every feature missing: the model imputes them, so the deployment's whole path
    (mount, load, parse, predict) answers without any real data in the stack."""
    dataset = t.training.dataset
    columns = [*dataset.numeric, *dataset.categorical] if dataset is not None else []
    return {"dataframe_records": [{c: None for c in columns}]}


def render_rollout(t: ModelServing, ctx: StackContext, endpoint: Resource, deployments: dict[str, Resource],
                   traffic: dict[str, int], mirror: dict[str, int], alert_rules: list[Resource]) -> Resource:
    document = {"traffic": traffic, "policy": policy(t), "alert_rule_ids": [a.attr("id") for a in alert_rules]}
    if mirror:
        document["mirror_traffic"] = mirror
    names = " ".join(f"--deployment {name}" for name in [*traffic, *mirror])
    step = Resource("terraform_data", "rollout", {
        # The endpoint's own configuration too: azapi updates it with a PUT of the whole body, which
        # carries no `traffic` (Terraform never sets it). Whether Azure ML keeps the map on such a PUT
        # is not documented (review C5), so the step runs again after any change to the endpoint and
        # restores the blueprint's map; when the map survived, it finds nothing to do.
        "triggers_replace": [jsonencode(document), jsonencode(endpoint.attr("body")),
                             jsonencode(endpoint.attr("identity"))],
        "provisioner": Block({
            "command": interp(f"printf '%s' \"$MLOPS_SMOKE_REQUEST\" > {SMOKE_FILE} && "
                              "mlops update-online-endpoint --endpoint-id ", endpoint.attr("id"),
                              f" {names} --smoke-request {SMOKE_FILE}"),
            "environment": {"MLOPS_ROLLOUT_CONFIG": jsonencode(document),
                            # Plain JSON text: the request's nulls are the point, and HCL drops null members.
                            "MLOPS_SMOKE_REQUEST": json.dumps(smoke_request(t), sort_keys=True)},
        }, labels=("local-exec",)),
    }, depends_on=(*deployments.values(), *alert_rules))
    ctx.stack.add(step)
    return step


__all__ = ["policy", "render_rollout", "smoke_request"]
