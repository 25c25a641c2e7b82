"""`mlops update-endpoint`: the serving stack's update step (see endpoint_update.py for why it exists).

    mlops update-endpoint --region R --endpoint NAME --config CONFIG [--timeout-minutes M]

Terraform runs it from the serving stack (a `terraform_data` provisioner) with the rendered
DeploymentConfig in MLOPS_DEPLOYMENT_CONFIG; AWS_ENDPOINT_URL points it at the emulator in the
local namespace. Exit codes: 0 the endpoint runs CONFIG, 1 SageMaker refused or rolled the update
back (the message says which configuration the endpoint still runs), 2 a wrong option.
"""

from __future__ import annotations

import os

import click

from .cli_common import user_errors


@click.command("update-endpoint")
@click.option("--region", required=True, help="The endpoint's AWS region.")
@click.option("--endpoint", required=True, help="The SageMaker endpoint's name.")
@click.option("--config", "config", required=True, help="The endpoint configuration it must run.")
@click.option("--timeout-minutes", type=click.IntRange(1, 24 * 60), default=240, show_default=True,
              help="Give up waiting after this long (the update goes on in SageMaker).")
@click.option("--poll-seconds", type=click.FloatRange(0.0, 600.0), default=30.0, show_default=True, hidden=True)
@user_errors
def update_endpoint(region: str, endpoint: str, config: str, timeout_minutes: int, poll_seconds: float) -> None:
    """Update a live endpoint to CONFIG, keeping autoscaled instance counts, and fail on a rollback."""
    from . import endpoint_update as eu
    from .errors import OperationError

    try:
        import boto3
    except ImportError:
        raise OperationError("mlops update-endpoint needs boto3: pip install -e '.[aws]' (make setup installs it)") \
            from None

    deployment = eu.deployment_from_env(os.environ.get("MLOPS_DEPLOYMENT_CONFIG"))
    clients = eu.Clients(boto3.client("sagemaker", region_name=region),
                         boto3.client("application-autoscaling", region_name=region), poll_seconds=poll_seconds)
    eu.update(clients, endpoint, config, deployment, timeout_minutes * 60.0, say=lambda s: click.echo(s, err=True))
