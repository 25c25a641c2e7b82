"""moto's server, with the few fixes the generated stacks need (run as `python -m mlops_dsl.emulator_server`).

moto 5.2.5, which pyproject pins for this reason:
- resolves SageMaker ARNs for tagging from a fixed table that lacks feature groups, so
  `ListTags` on one fails with an internal error and the AWS provider retries until it times
  out. The group is created by moto's own API; only the ARN lookup is widened here.
- has no `DeleteModelPackageGroup` and no `DeleteFeatureGroup`, and answers `DescribeFeatureGroup`
  for a missing group with an internal error instead of ResourceNotFound, so `destroy` of the
  training and feature stacks could never finish. The deletes are added the way moto's others
  work (the item leaves the backend's table), and a missing group is ResourceNotFound.
- has no `UpdateEndpoint`, which Terraform calls when an endpoint's configuration changes (a new
  pinned model version), so the second deployment of the model lifecycle could never apply. It is
  added as AWS documents it: the endpoint must exist, the configuration too, and the endpoint then
  serves the new configuration's variants (it is InService at once: moto runs no instances).
  To rehearse an alarm-triggered rollback, `mlops emulator rehearse-rollback --endpoint NAME`: the
  endpoint's next update leaves it on the configuration it runs, with a FailureReason, as SageMaker
  does (the names wait in the file named by MLOPS_EMULATOR_REHEARSALS; each is used once).
- drops a model package's `CustomerMetadataProperties` on every `UpdateModelPackage` that does not
  name them (an approval), where AWS keeps them; the artifact digest recorded at registration
  lives there, so an update that names none keeps them here too.
- ignores the conditions it cannot evaluate (the `Bool` operator, keys it has no value for), so a
  bucket policy's `DenyInsecureTransport` (`aws:SecureTransport` false) denied every object upload.
  In IAM a condition on a key the request does not carry does not hold, so the statement does not
  apply; the emulator now does the same (it stands in for AWS over HTTPS).
- answers `InvokeEndpoint` with a canned body, so a smoke or load test in `local` would check
  nothing. On an endpoint's first invocation of a variant (TargetVariant, else one picked by the
  variants' weights, as SageMaker routes), the emulator reads that variant's model's ModelDataUrl
  from moto's SageMaker backend, its model.tar.gz from moto's S3, unpacks it to a scratch directory
  and starts this repository's server on it (`python -m serving serve` on a free 127.0.0.1 port, one
  worker) with the container's Environment, as SageMaker passes it; AWS calls the server makes go
  to this emulator (AWS_ENDPOINT_URL, with its credentials and region), so a variant with online
  features reads them from the emulator's Feature Store runtime. Once /ping answers, it forwards
  the body, Content-Type and Accept, and answers as SageMaker does: the server's body and the
  invoked variant, or a ModelError (424) naming the server's status and message. A model without a
  ModelDataUrl keeps moto's canned answer. The servers stop with the emulator (atexit, and SIGTERM
  exits through it); their logs are `serve.log` beside each unpacked model.
Nothing else of moto is changed, except that its development server answers with HTTP/1.0, one
connection per request. Over keep-alive connections one full apply in four failed here with
AlreadyExists on a CreateAlias that was sent once by Terraform and that the server had just
answered with success: the SDK's retry of a response lost on a reused connection is the likely
cause, and closing each connection removes the reuse.
"""

from __future__ import annotations

import sys
from typing import Any

from mlops_dsl import emulator_featurestore, emulator_modes, emulator_stepfunctions

REHEARSALS_ENV = "MLOPS_EMULATOR_REHEARSALS"  # the file `mlops emulator rehearse-rollback` writes


def _rehearsed_rollback(endpoint_name: str) -> bool:
    """True once for each time `endpoint_name` was written to the rehearsals file."""
    import os
    from pathlib import Path

    path = Path(os.environ.get(REHEARSALS_ENV) or "/nonexistent")
    try:
        names = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if endpoint_name not in names:
        return False
    names.remove(endpoint_name)
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return True


def _patch() -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker import models, responses
    from moto.sagemaker.exceptions import ResourceNotFound, ValidationError

    original = models.SageMakerModelBackend._get_resource_from_arn

    def lookup(self: Any, arn: str) -> Any:
        if ":feature-group/" in arn:
            for group in self.feature_groups.values():  # keyed by ARN; tagging may use another case
                if group.arn.lower() == arn.lower():
                    return group
        return original(self, arn)

    setattr(models.SageMakerModelBackend, "_get_resource_from_arn", lookup)  # noqa: B010 - patching moto

    def delete_group(backend: Any, model_package_group_name: str) -> None:
        if backend.model_package_groups.pop(model_package_group_name, None) is None:
            backend.describe_model_package_group(model_package_group_name)  # raises moto's own not-found error

    def delete_group_response(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return ActionResult({})

    setattr(models.SageMakerModelBackend, "delete_model_package_group", delete_group)  # noqa: B010
    setattr(responses.SageMakerResponse, "delete_model_package_group", delete_group_response)  # noqa: B010

    describe_feature_group = models.SageMakerModelBackend.describe_feature_group

    def describe_feature_group_or_not_found(backend: Any, feature_group_name: str) -> Any:
        try:
            return describe_feature_group(backend, feature_group_name)
        except KeyError:
            raise ResourceNotFound(f"Resource Not Found: FeatureGroup {feature_group_name} not found") from None

    def delete_feature_group(self: Any) -> Any:
        name = self._get_param("FeatureGroupName")
        backend = self.sagemaker_backend
        backend.describe_feature_group(name)  # ResourceNotFound when there is no such group
        for arn in [a for a, g in backend.feature_groups.items() if g.feature_group_name.lower() == name.lower()]:
            del backend.feature_groups[arn]
        return ActionResult({})

    setattr(models.SageMakerModelBackend, "describe_feature_group", describe_feature_group_or_not_found)  # noqa: B010
    setattr(responses.SageMakerResponse, "delete_feature_group", delete_feature_group)  # noqa: B010

    def update_endpoint(self: Any) -> Any:
        backend = self.sagemaker_backend
        name, config_name = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint \"{name}\".")
        try:
            config = backend.describe_endpoint_config(config_name)
        except (KeyError, ValidationError):
            raise ValidationError(message=f"Could not find endpoint configuration \"{config_name}\".") from None
        if _rehearsed_rollback(name):
            # A rehearsal of an alarm-triggered rollback: the endpoint stays on its configuration.
            endpoint.failure_reason = "Rolled back (emulated: mlops emulator rehearse-rollback)"
            endpoint.last_modified_time = utcnow()
            return ActionResult({"EndpointArn": endpoint.arn})
        endpoint.failure_reason = None
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.data_capture_config = config.get("DataCaptureConfig")
        endpoint.last_modified_time = utcnow()
        return ActionResult({"EndpointArn": endpoint.arn})

    setattr(responses.SageMakerResponse, "update_endpoint", update_endpoint)  # noqa: B010

    update_model_package = models.SageMakerModelBackend.update_model_package

    def update_model_package_keeping_metadata(backend: Any, model_package_arn: str, customer_metadata_properties: Any,
                                              **kwargs: Any) -> Any:
        if customer_metadata_properties is None:
            mapped = backend.model_package_name_mapping.get(model_package_arn, model_package_arn)
            package = backend.model_packages.get(mapped)
            customer_metadata_properties = package.customer_metadata_properties if package else None
        return update_model_package(backend, model_package_arn=model_package_arn,
                                    customer_metadata_properties=customer_metadata_properties, **kwargs)

    setattr(models.SageMakerModelBackend, "update_model_package", update_model_package_keeping_metadata)  # noqa: B010


def _patch_conditions() -> None:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    is_action_permitted = IAMPolicyStatement.is_action_permitted

    def applies_only_when_its_condition_holds(statement: Any, action: str, resource: str = "*",
                                              principal: str | None = None,
                                              incoming_condition_values: dict[str, str] | None = None) -> Any:
        condition = statement._statement.get("Condition") or {}
        keys = {key for values in condition.values() if isinstance(values, dict) for key in values}
        if keys - set(incoming_condition_values or {}):
            return PermissionResult.NEUTRAL
        return is_action_permitted(statement, action, resource, principal, incoming_condition_values)

    setattr(IAMPolicyStatement, "is_action_permitted", applies_only_when_its_condition_holds)  # noqa: B010


class _Served:
    """The local servers of the pinned artifacts, one per ModelDataUrl, started on first use."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        # (ModelDataUrl, the container's Environment) -> (process, port, directory): one artifact
        # served by two models of different environments (a plain and an online-features variant)
        # runs as two servers, as on SageMaker.
        self.servers: dict[tuple[str, str], tuple[Any, int, str]] = {}

    def port(self, account: str, model_data_url: str, environment: dict[str, str] | None = None,
             emulator_url: str | None = None) -> int:
        import json

        served = (model_data_url, json.dumps(environment or {}, sort_keys=True))
        with self.lock:  # one start per artifact, even when the first requests come together
            if served not in self.servers:
                self.servers[served] = self._start(account, model_data_url, environment or {}, emulator_url)
            return self.servers[served][1]

    @staticmethod
    def environment(container: dict[str, str], emulator_url: str | None) -> dict[str, str]:
        """The server's environment: this process's, the container's Environment over it (SageMaker
        passes it to the container), one worker, and AWS calls sent back to this emulator."""
        import os

        env = {**os.environ, **{str(k): str(v) for k, v in container.items()}, "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
        if emulator_url:
            env["AWS_ENDPOINT_URL"] = emulator_url
            env.setdefault("AWS_ACCESS_KEY_ID", "mlops-local")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "mlops-local")
            env.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
            for specific in [k for k in env if k.startswith("AWS_ENDPOINT_URL_")]:
                del env[specific]  # a developer's own service endpoints would win over AWS_ENDPOINT_URL
        return env

    def _start(self, account: str, model_data_url: str, container: dict[str, str],
               emulator_url: str | None) -> tuple[Any, int, str]:
        import io
        import os
        import socket
        import subprocess
        import tarfile
        import tempfile
        from pathlib import Path

        from moto.s3.models import s3_backends

        bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
        try:
            data = s3_backends[account]["global"].get_object(bucket, key).value
        except Exception as exc:  # moto's own missing-bucket or missing-key error
            raise RuntimeError(f"{model_data_url}: cannot be read from the emulator's S3 ({exc})") from None
        directory = tempfile.mkdtemp(prefix="mlops-emulator-model-")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(directory, filter="data")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        root = Path(__file__).resolve().parents[1]  # this repository: its `serving` package
        env = {**self.environment(container, emulator_url),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        log = open(Path(directory) / "serve.log", "wb")  # noqa: SIM115 - kept open for the process's life
        process = subprocess.Popen([sys.executable, "-m", "serving", "serve", "--model", directory,
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait(process, port, Path(directory) / "serve.log")
        return process, port, directory

    @staticmethod
    def _wait(process: Any, port: int, log: Any) -> None:
        """Until /ping answers 200, or 503 `failed` (the invocations then answer why), within the timeout."""
        import http.client
        import json
        import os
        import time

        deadline = time.monotonic() + float(os.environ.get(SERVE_TIMEOUT_ENV, "120"))
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the model server exited with {process.returncode} (log: {log})")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/ping")
                answer = connection.getresponse()
                body = answer.read()
                connection.close()
                if answer.status == 200 or json.loads(body or b"{}").get("status") == "failed":
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the model server did not answer /ping within the timeout (log: {log})")

    def stop(self) -> None:
        import shutil
        import subprocess

        with self.lock:
            for process, _, directory in self.servers.values():
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                shutil.rmtree(directory, ignore_errors=True)
            self.servers.clear()


SERVE_TIMEOUT_ENV = "MLOPS_EMULATOR_SERVE_TIMEOUT"  # seconds a model server may take to load (default 120)
SERVED = _Served()


def _model_error(status: int, message: str) -> tuple[int, dict[str, str], str]:
    import json

    return 424, {"status": "424", "Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}, json.dumps(
        {"__type": "ModelError", "message": message, "OriginalStatusCode": status})


def _patch_invoke() -> None:
    """InvokeEndpoint forwarded to a local server of the variant's model (see the module's docstring)."""
    import atexit
    import http.client
    import random

    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime import responses

    canned = responses.SageMakerRuntimeResponse.invoke_endpoint

    def invoke_endpoint(self: Any) -> Any:
        from urllib.parse import unquote

        name = self._get_params().get("EndpointName") or unquote(self.path.split("?")[0].split("/")[2])
        backend = sagemaker_backends[self.current_account][self.region]
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationError(message=f"Endpoint {name} of account {self.current_account} not found.")
        variants = backend.describe_endpoint_config(endpoint.endpoint_config_name)["ProductionVariants"]
        target = self.headers.get("X-Amzn-SageMaker-Target-Variant")
        if target:
            chosen = next((v for v in variants if v["VariantName"] == target), None)
            if chosen is None:
                raise ValidationError(message=f"Variant {target} not found for endpoint {name}.")
        else:
            chosen = random.choices(variants, weights=[float(v.get("InitialVariantWeight") or 1) for v in variants])[0]
        model = backend.describe_model(chosen["ModelName"])
        container = model.primary_container or (model.containers[0] if model.containers else {})
        url = container.get("ModelDataUrl")
        if not url:
            return canned(self)
        host = self.headers.get("Host")
        try:
            port = SERVED.port(self.current_account, url, container.get("Environment") or {},
                               f"http://{host}" if host else None)
        except RuntimeError as exc:
            return _model_error(500, f"variant {chosen['VariantName']}: {exc}")
        headers = {"Content-Type": self.headers.get("Content-Type") or "application/json"}
        if self.headers.get("Accept"):
            headers["Accept"] = self.headers["Accept"]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", "/invocations", body=self.body, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            return _model_error(500, f"variant {chosen['VariantName']}: the model server did not answer ({exc})")
        finally:
            connection.close()
        if answer.status != 200:
            return _model_error(answer.status, f"Received client error ({answer.status}) from primary with message "
                                               f"\"{body.decode('utf-8', 'replace')[:1000]}\"")
        return 200, {"Content-Type": answer.getheader("Content-Type") or "application/json",
                     "x-Amzn-Invoked-Production-Variant": chosen["VariantName"]}, body

    setattr(responses.SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)  # noqa: B010
    atexit.register(SERVED.stop)


_PATCHED: list[bool] = []


def patch() -> None:
    """Every fix above, once, in this process (the tests run moto's threaded server in-process)."""
    if _PATCHED:
        return
    _PATCHED.append(True)
    _patch()
    _patch_conditions()
    _patch_invoke()
    emulator_featurestore.patch()  # the Feature Store runtime moto lacks
    emulator_stepfunctions.patch()  # ListStateMachineVersions, which the AWS provider reads
    emulator_modes.patch()  # Step Functions' ValidateStateMachineDefinition moto lacks


def main() -> None:
    import signal

    patch()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that atexit stops the model servers
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    MotoRequestHandler.protocol_version = "HTTP/1.0"
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
