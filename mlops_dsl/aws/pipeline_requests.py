"""Every step of a rendered SageMaker pipeline, checked against the SageMaker API's request shapes.

A pipeline step's `Arguments` is the request SageMaker sends for that step (CreateTrainingJob for
a Training step, CreateProcessingJob for Processing, ...), and SageMaker validates it only when an
execution reaches the step: a misspelled member fails a pipeline run hours in, or never, if it is
silently dropped. botocore ships the API's service model (the same JSON the AWS SDKs are generated
from), so this check runs offline: required and unknown members, types, enums, lengths, patterns
and list sizes.

Values known only later are replaced by plausible literals first: a pipeline parameter by its
default, `Std:Join` by the join of its parts, the execution id and step properties by samples, and
Terraform references by a sample of the member's shape (an ARN for a role, `s3://...` for a URI).
The member names a pipeline fills itself (the job's name) are not required here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..terraform.values import Call, Expr, Interp

STEP_OPERATIONS = {
    "Training": "CreateTrainingJob",
    "Tuning": "CreateHyperParameterTuningJob",
    "Processing": "CreateProcessingJob",
    "RegisterModel": "CreateModelPackage",
    "Transform": "CreateTransformJob",
    "Model": "CreateModel",
}
# Members of the request the pipeline service sets itself (it generates a job name per execution).
FILLED_BY_PIPELINE = {"TrainingJobName", "HyperParameterTuningJobName", "ProcessingJobName", "TransformJobName",
                      "ModelName"}
# Plausible literals for a value known only at apply or execution time, by the botocore shape of
# the member it stands in. A shape without a sample gets a short placeholder.
SAMPLES = {
    "RoleArn": "arn:aws:iam::123456789012:role/example-sagemaker-execution",
    "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/0123abcd-4567-89ef-0123-456789abcdef",
    "SubnetId": "subnet-0123456789abcdef0",
    "SecurityGroupId": "sg-0123456789abcdef0",
    "AlgorithmImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/example/training:0123456789ab",
    "ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/example/training:0123456789ab",
    "ContainerImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/example/serving:0123456789ab",
    "S3Uri": "s3://example-bucket/example/key",
    "Url": "s3://example-bucket/example/model.tar.gz",
    "EntityName": "example-models",
    "ArnOrName": "example-models",
}
EXECUTION_ID = "a1b2c3d4e5f6"
STEP_PROPERTY = "pipelines-a1b2c3d4e5f6-Tune-0123456789-abcd"
PLACEHOLDER = "example"


def _closest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class _Resolver:
    """Turns pipeline expressions and Terraform references into literals, for one definition."""

    def __init__(self, definition: Mapping[str, Any]):
        self.parameters = {p["Name"]: p for p in definition.get("Parameters", []) if isinstance(p, Mapping)}

    def text(self, value: Any, shape: str | None = None) -> str:
        """A string-valued expression as a literal string."""
        if isinstance(value, str):
            return value
        if isinstance(value, Expr):
            return SAMPLES.get(shape or "", PLACEHOLDER)
        if isinstance(value, Interp):
            # The literal parts keep their form (`s3://`, `/training/`); references become a name.
            if all(isinstance(part, Expr) for part in value.parts) or shape in ("RoleArn", "KmsKeyId"):
                return SAMPLES.get(shape or "", PLACEHOLDER)
            return "".join(part if isinstance(part, str) else "example-bucket" for part in value.parts)
        if isinstance(value, Mapping):
            if "Get" in value and isinstance(value["Get"], str):
                return self._get(value["Get"], shape)
            if "Std:Join" in value:
                join = value["Std:Join"]
                return str(join.get("On", "")).join(self.text(v) for v in join.get("Values", []))
        return str(value)

    def _get(self, path: str, shape: str | None) -> str:
        if path.startswith("Parameters."):
            parameter = self.parameters.get(path.removeprefix("Parameters."), {})
            if "DefaultValue" in parameter:
                return self.text(parameter["DefaultValue"], shape)
        if path == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if path.endswith(("S3Uri", "S3ModelArtifacts")):
            return SAMPLES["S3Uri"]
        return SAMPLES.get(shape or "", STEP_PROPERTY)

    def is_expression(self, value: Any) -> bool:
        return isinstance(value, (Expr, Interp)) or (
            isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("Get", "Std:Join", "Std:JsonGet"))


def _pattern_matches(pattern: str, text: str) -> bool | None:
    """Whether the API's pattern (Java syntax, matched whole) accepts the text; None if Python cannot read it."""
    try:
        return re.fullmatch(pattern, text, flags=re.DOTALL) is not None
    except re.error:
        return None


class _Checker:
    def __init__(self, resolver: _Resolver, where: str):
        self.resolver = resolver
        self.where = where
        self.problems: list[str] = []
        self.checked = 0

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.where}: {path}: {message}")

    def check(self, shape: Any, value: Any, path: str) -> None:
        kind = shape.type_name
        if isinstance(value, Expr) and kind == "list":
            value = [value]  # a Terraform list (subnet ids): one item stands for each
        if self.resolver.is_expression(value):
            if kind not in ("string", "integer", "long", "float", "double", "boolean"):
                self.problem(path, f"an expression where the API expects a {kind} ({shape.name})")
                return
            if kind != "string":
                return  # a number or bool known only at execution time: its type cannot be checked here
            value = self.resolver.text(value, shape.name)
        self.checked += 1
        if kind == "structure":
            self._structure(shape, value, path)
        elif kind == "list":
            self._list(shape, value, path)
        elif kind == "map":
            self._map(shape, value, path)
        elif kind == "string":
            self._string(shape, value, path)
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                self.problem(path, f"expects an integer ({shape.name}), got {value!r}")
            else:
                self._range(shape, value, path)
        elif kind in ("float", "double"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.problem(path, f"expects a number ({shape.name}), got {value!r}")
            else:
                self._range(shape, value, path)
        elif kind == "boolean" and not isinstance(value, bool):
            self.problem(path, f"expects true or false ({shape.name}), got {value!r}")

    def _structure(self, shape: Any, value: Any, path: str, skip_required: frozenset[str] = frozenset()) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, f"expects an object ({shape.name}), got {value!r}")
            return
        members = shape.members
        for name, item in value.items():
            if name not in members:
                self.problem(f"{path}.{name}" if path else name,
                             f"no such member of {shape.name}{_closest(name, list(members))}")
                continue
            self.check(members[name], item, f"{path}.{name}" if path else name)
        for name in shape.required_members:
            if name not in value and name not in skip_required:
                self.problem(f"{path}.{name}" if path else name, f"required by {shape.name}, and not set")

    def _list(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, (list, tuple)):
            self.problem(path, f"expects a list ({shape.name}), got {value!r}")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            self.problem(path, f"{shape.name} holds {low or 0} to {high if high is not None else 'any number of'} "
                               f"items; got {len(value)}")
        for i, item in enumerate(value):
            self.check(shape.member, item, f"{path}[{i}]")

    def _map(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, f"expects a map ({shape.name}), got {value!r}")
            return
        high = shape.metadata.get("max")
        if high is not None and len(value) > high:
            self.problem(path, f"{shape.name} holds at most {high} entries; got {len(value)}")
        for key, item in value.items():
            self.check(shape.key, key, f"{path}.{key} (key)")
            self.check(shape.value, item, f"{path}.{key}")

    def _string(self, shape: Any, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.problem(path, f"expects a string ({shape.name}), got {value!r}")
            return
        if shape.enum and value not in shape.enum:
            self.problem(path, f"{value!r} is not one of {shape.name}'s values ({', '.join(shape.enum)})"
                               f"{_closest(value, list(shape.enum))}")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            self.problem(path, f"{shape.name} needs at least {low} characters; {value!r} has {len(value)}")
        if high is not None and len(value) > high:
            self.problem(path, f"{shape.name} allows at most {high} characters; got {len(value)}")
        pattern = shape.metadata.get("pattern")
        if pattern and _pattern_matches(pattern, value) is False:
            self.problem(path, f"{value!r} does not match {shape.name}'s pattern {pattern}")

    def _range(self, shape: Any, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            self.problem(path, f"{shape.name} must be in [{low}, {high}]; got {value}")


def steps(definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every step, including those inside a Condition's branches."""
    for step in definition.get("Steps", []):
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments", {})
            yield from steps({"Steps": [*arguments.get("IfSteps", []), *arguments.get("ElseSteps", [])]})


def service_model() -> Any:
    """botocore's SageMaker service model (botocore is a dependency of `mlops validate --schema`)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def check_definition(definition: Mapping[str, Any], where: str, model: Any | None = None) -> tuple[list[str], int]:
    """Problems of every step's Arguments against its API request, and how many values were checked."""
    model = model or service_model()
    resolver = _Resolver(definition)
    problems: list[str] = []
    checked = 0
    for step in steps(definition):
        operation = STEP_OPERATIONS.get(str(step.get("Type")))
        if operation is None:
            continue  # Condition and Fail steps have no API request
        checker = _Checker(resolver, f"{where}: step {step.get('Name')!r} ({operation})")
        checker._structure(model.operation_model(operation).input_shape, step.get("Arguments", {}), "",
                           skip_required=frozenset(FILLED_BY_PIPELINE))
        problems += checker.problems
        checked += checker.checked
    return problems, checked


def definition_of(value: Any) -> Mapping[str, Any] | None:
    """The definition dict inside `pipeline_definition = jsonencode({...})`, if that is its form."""
    if isinstance(value, Call) and value.name == "jsonencode" and value.args and isinstance(value.args[0], Mapping):
        return value.args[0]
    return None


def check_request(model: Any, operation: str, request: Mapping[str, Any], where: str,
                  skip_required: frozenset[str] = frozenset()) -> tuple[list[str], int]:
    """One API request (a state machine task's, say) against its input shape: problems, values checked."""
    checker = _Checker(_Resolver({}), where)
    checker._structure(model.operation_model(operation).input_shape, request, "", skip_required=skip_required)
    return checker.problems, checker.checked
