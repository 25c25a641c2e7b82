"""BatchInference on Azure (README: Inference modes): a scheduled Azure ML command job that scores
the pinned registry version with `python -m serving score`, its identity held to the two prefixes,
its body checked against the vendored azapi types; nothing but a note without a pin; Azure's limits
are blueprint errors naming the field."""

from __future__ import annotations

import pytest

from mlops_dsl import BatchInference, Platform, azapi_check
from mlops_dsl.errors import BlueprintError

from .test_azure import _by, _platform, _stacks, _text, azure_pin


def _with_batch(**kwargs) -> Platform:
    platform = _platform()
    serving = platform.templates[-1]
    return Platform(platform.name, cloud="azure").add(*platform.templates, BatchInference(serving, variant="blue",
                                                                                            **kwargs))


def _batch(**kwargs):
    return _stacks(_with_batch(**kwargs))["batch"]


def test_the_schedule_creates_a_command_job_scoring_the_pinned_version_over_the_input_prefix() -> None:
    stack = _batch(content_type="application/jsonlines", accept="application/jsonlines", max_payload_mb=12)
    schedule = _by(stack, "azapi_resource")["batch_schedule"]
    properties = schedule.body["body"]["properties"]
    assert properties["trigger"] == {"triggerType": "Cron", "expression": "0 4 * * *", "timeZone": "UTC"}
    job = properties["action"]["jobDefinition"]
    assert job["command"] == ("python -m serving score --model ${{inputs.model}} --input ${{inputs.data}} "
                              "--output ${{outputs.predictions}} --content-type application/jsonlines "
                              "--accept application/jsonlines --max-payload-mb 12")
    assert job["inputs"]["model"] == {"jobInputType": "mlflow_model", "uri": azure_pin("fin").artifact,
                                      "mode": "ReadOnlyMount"}
    assert job["inputs"]["data"]["uri"] == "azureml://datastores/processed/paths/batch/input/"
    # One folder per run, named by the job: runs never overwrite each other.
    assert job["outputs"]["predictions"]["uri"] == "azureml://datastores/experiments/paths/batch/predictions/${{name}}/"
    assert job["limits"] == {"jobLimitsType": "Command", "timeout": "PT240M"}
    environment = _by(stack, "azapi_resource")["batch_scoring_environment_version"]
    assert environment.body["name"] == "cccccccccccc"  # the pinned serving image, the same tag the variant serves
    assert _text(environment.body["body"]["properties"]["image"]).endswith('/serving:cccccccccccc"')
    # Every azapi body is one Azure's API accepts, by the vendored types.
    for resource in _by(stack, "azapi_resource").values():
        assert azapi_check.check_resource("azapi_resource", resource.body, resource.address) == []


def test_the_jobs_identity_reads_the_input_prefix_and_writes_the_output_prefix_only() -> None:
    stack = _batch()
    assignments = _by(stack, "azurerm_role_assignment")
    reads, writes = assignments["batch_processed"].body, assignments["batch_experiments"].body
    assert "StringStartsWith 'batch/input/'" in reads["condition"] and "batch/predictions/" not in reads["condition"]
    assert reads["condition"].endswith("OR (false))")  # no write under the input zone
    assert "StringStartsWith 'batch/predictions/'" in writes["condition"] and "batch/input/" not in writes["condition"]
    role = _by(stack, "azurerm_role_definition")["batch_blobs"].body
    assert not any("delete" in a for a in role["permissions"].body["data_actions"])
    assert {a.body.get("role_definition_name") for a in assignments.values()} == {None, "AcrPull",
                                                                                   "AzureML Registry User"}
    cluster = _by(stack, "azurerm_machine_learning_compute_cluster")["batch"].body
    assert cluster["scale_settings"].body["min_node_count"] == 0 and cluster["node_public_ip_enabled"] is False
    alert = _by(stack, "azurerm_monitor_metric_alert")["batch_failed_runs"].body
    assert alert["criteria"].body["dimension"].body["values"] == ["fin-batch"]


def test_a_rate_schedule_is_a_recurrence_and_an_unknown_one_names_the_field() -> None:
    properties = _by(_batch(schedule="rate(6 hours)"), "azapi_resource")["batch_schedule"].body["body"]["properties"]
    assert properties["trigger"] == {"triggerType": "Recurrence", "frequency": "hour", "interval": 6,
                                     "timeZone": "UTC"}


def test_without_a_pin_no_job_runs_and_the_plan_says_so() -> None:
    stack = _stacks(_with_batch(), pins={})["batch"]
    assert not stack.resources
    assert stack.notes == ["blue: no model version pinned (models/dev.yaml), so no batch job runs"]


def test_more_than_one_node_is_a_blueprint_error_naming_the_field() -> None:
    with pytest.raises(BlueprintError, match="BatchInference 'batch': instance_count: the Azure batch job scores "
                                             "on one node"):
        _stacks(_with_batch(instance_count=2))
