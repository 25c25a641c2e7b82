"""`mlops update-online-endpoint`: the Azure serving stack's guarded rollout step (azureml/rollout.py).

    mlops update-online-endpoint --endpoint-id ARM_ID --deployment NAME [--deployment NAME ...]
        --smoke-request FILE [--config-file FILE] [--timeout-minutes M]

The rest comes as one JSON document, in MLOPS_ROLLOUT_CONFIG or in --config-file:

    {"traffic": {"champion-v3": 90, "challenger-v1": 10},    # the blueprint's final live map, sums to 100
     "mirror_traffic": {"shadow-v2": 20},                     # optional; one deployment, at most 50
     "policy": {"mode": "CANARY",                             # ALL_AT_ONCE | CANARY | LINEAR
                "canary_percent": 10, "linear_step_percent": 20,
                "wait_seconds": 300, "bake_seconds": 300},
     "alert_rule_ids": ["/subscriptions/.../providers/Microsoft.Insights/metricAlerts/NAME", ...]}

Terraform runs it from a `terraform_data` provisioner once the new deployment exists and before the
old one is destroyed. Exit codes: 0 the endpoint serves the final map (also when it already did),
1 refused or failed (the message says why and which traffic the endpoint serves: the previous map
once traffic had moved), 2 a wrong option or document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .cli_common import user_errors
from .errors import MlopsError

CONFIG_ENV = "MLOPS_ROLLOUT_CONFIG"


def _client(poll_seconds: float):  # the tests replace it with a fake of Azure
    from .azureml.rollout import RefreshingClient

    return RefreshingClient(poll_seconds=poll_seconds)


def _document(config_file: Path | None) -> tuple[object, str]:
    if config_file is not None:
        try:
            text, where = config_file.read_text(), str(config_file)
        except OSError as exc:
            raise MlopsError(f"--config-file {config_file}: {exc.strerror or exc}") from None
    elif os.environ.get(CONFIG_ENV):
        text, where = os.environ[CONFIG_ENV], CONFIG_ENV
    else:
        raise MlopsError(f"no rollout document: set {CONFIG_ENV} or give --config-file")
    try:
        return json.loads(text), where
    except ValueError as exc:
        raise MlopsError(f"{where}: not JSON ({exc})") from None


@click.command("update-online-endpoint")
@click.option("--endpoint-id", required=True, help="The online endpoint's ARM id.")
@click.option("--deployment", "deployments", required=True, multiple=True,
              help="A new deployment to smoke-test and roll out (repeatable).")
@click.option("--smoke-request", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The model's input example (JSON), sent to each new deployment before it gets traffic.")
@click.option("--config-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help=f"The rollout document (default: the JSON in {CONFIG_ENV}).")
@click.option("--timeout-minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True,
              help="Give up on any single wait (provisioning, a traffic update) after this long.")
@click.option("--poll-seconds", type=click.FloatRange(0.0, 600.0), default=10.0, show_default=True, hidden=True)
@click.option("--alert-poll-seconds", type=click.FloatRange(0.0, 600.0), default=60.0, show_default=True,
              hidden=True)
@user_errors
def update_online_endpoint(endpoint_id: str, deployments: tuple[str, ...], smoke_request: Path,
                           config_file: Path | None, timeout_minutes: int, poll_seconds: float,
                           alert_poll_seconds: float) -> None:
    """Smoke-test new deployments, move traffic to the blueprint's map in steps, watch the alerts,
    and put the previous traffic back when anything fails."""
    from .azureml import rollout as ro
    from .azureml.smoke import load_example

    doc, where = _document(config_file)
    final, policy, alerts = ro.config_from_json(doc, where)
    body = load_example(smoke_request)
    engine = ro.Rollout(_client(poll_seconds), endpoint_id, list(deployments), final, policy, alerts, body,
                        timeout=timeout_minutes * 60.0, say=lambda s: click.echo(s, err=True),
                        alert_poll_seconds=alert_poll_seconds)
    engine.run()
