"""BatchInference on Azure (README: Inference modes): refused with the documented reasons, before
anything is rendered, pinned or not; and the premise of the first reason, that this platform's
workspaces are encrypted with the customer-managed key, holds in the renders (if that changes, the
refusal must be revisited)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlops_dsl import BatchInference, Platform
from mlops_dsl.azure.batch import REASONS
from mlops_dsl.errors import BlueprintError
from mlops_dsl.namespaces import parse

from .test_azure import NAMESPACES, TAGS, _by, _platform, _stacks, azure_pin


def _with_batch(**kwargs) -> Platform:
    platform = _platform()
    serving = platform.templates[-1]
    return Platform(platform.name, cloud="azure").add(*platform.templates, BatchInference(serving, variant="blue",
                                                                                            **kwargs))


@pytest.mark.parametrize("pins", [{}, {"blue": azure_pin("fin"), "green": azure_pin("fin", 4)}])
def test_batch_inference_on_azure_is_refused_naming_the_template_field_and_every_reason(pins: dict) -> None:
    namespace = replace(parse(NAMESPACES)["dev"], pins={"fin": pins})
    with pytest.raises(BlueprintError) as refused:
        _with_batch().synth(namespace, image_tags=TAGS)
    message = str(refused.value)
    assert "BatchInference 'batch': schedule: batch inference on Azure is not rendered in this version" in message
    for reason in REASONS:
        assert reason in message
    assert "customer-managed key" in message and "Standard workflow" in message and "InvokeBatchEndpoint" in message
    assert "declare BatchInference on an AWS platform (namespace 'dev')" in message


def test_the_refusal_is_the_same_whatever_the_schedule() -> None:
    # Nothing of the template is rendered, so no field of it is judged on Azure beyond the refusal.
    with pytest.raises(BlueprintError, match="BatchInference 'batch': schedule: batch inference on Azure"):
        _with_batch(schedule="rate(6 hours)").synth(parse(NAMESPACES)["dev"], image_tags=TAGS)


def test_the_workspaces_a_batch_deployment_would_need_are_encrypted_with_the_platform_key() -> None:
    stacks = _stacks(_platform())
    for template, address in (("training", "training"), ("features", "features")):
        workspace = _by(stacks[template], "azapi_resource")[address].body
        assert workspace["type"].startswith("Microsoft.MachineLearningServices/workspaces@")
        properties = workspace["body"]["properties"]
        assert properties["encryption"]["status"] == "Enabled"
        assert properties["publicNetworkAccess"] == "Disabled"
