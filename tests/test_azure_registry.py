"""`mlops models` on an Azure platform, against a fake of the Azure ML registry's control plane and of
the blob storage its uploads go to: the same lifecycle, refusals and exit codes as on AWS
(tests/test_models_cli.py), with approval as a tag of the registry's model version.

The fake answers as the 2024-10-01 REST API does (azure-rest-api-specs .../stable/2024-10-01/mfe.json
and registries.json): a PUT that creates answers 201 with an Azure-AsyncOperation header, whose status
is InProgress before it is Succeeded; a GET of what does not exist answers 404; a body the API would
not take (a read-only or unknown property, a changed immutable field of an existing version, an
upload type other than TemporaryBlobReference) answers 400 or 409. Storage takes a Put Blob only with
the SAS it handed out and the x-ms-blob-type header, and refuses a bearer token.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_dsl.azureml import naming
from mlops_dsl.azureml import registry as azure_registry
from mlops_dsl.azureml.arm import Client, Response
from mlops_dsl.cli import main
from mlops_dsl.cli_models import check_pins
from mlops_dsl.errors import NamespaceError
from mlops_dsl.namespaces import load
from mlops_dsl.pins import parse

from .conftest import ROOT

DEV_SUB, STG_SUB = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
NAMESPACES = f"""\
defaults:
  models: {{registry: dev}}
  azure: {{tenant_id: 00000000-0000-0000-0000-0000000000aa, location: westeurope}}
namespaces:
  dev:
    azure: {{subscription_id: {DEV_SUB}, backend: {{resource_group_name: rg-tf, storage_account_name: tfdev,
             container_name: tfstate}}}}
  staging:
    models: {{promoted_from: dev}}
    azure: {{subscription_id: {STG_SUB}, backend: {{resource_group_name: rg-tf, storage_account_name: tfstg,
             container_name: tfstate}}}}
"""
PLATFORM = "financial-behavior"
REGISTRY = "mlr-financial-behavior-dev"
RG = "rg-financial-behavior-dev"
STORE = "https://fakeregstore.blob.core.windows.net"
WRITABLE = {"description", "tags", "properties", "isAnonymous", "isArchived", "flavors", "jobName", "modelType",
            "modelUri", "stage"}
MUTABLE = {"tags", "description", "stage", "isArchived"}  # what a PUT may change on an existing version
ARM_PATH = re.compile(r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                      r"Microsoft\.MachineLearningServices/registries/(?P<registry>[^/]+)(?P<rest>/.*)?")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, {"error": {"code": code, "message": message}})


class FakeAzureML:
    """The registry's REST API and its storage, holding state in dicts."""

    def __init__(self, registries: tuple[tuple[str, str, str], ...] = ((DEV_SUB, RG, REGISTRY),), page: int = 1):
        self.registries: dict[tuple[str, str, str], dict[str, Any]] = {key: {} for key in registries}
        self.blobs: dict[str, bytes] = {}
        self.grants: dict[str, str] = {}  # SAS signature -> the blob directory it may write
        self.operations: dict[str, list[str]] = {}  # operation id -> the statuses its polls answer, in turn
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.page = page  # versions per page of a list, so that nextLink is followed
        self.clock = itertools.count(1)
        self.fail_operations = False  # every long-running operation ends Failed
        self.deny_reads = False  # every GET of a version answers 403
        self.race: dict[str, Any] | None = None  # a version that another registration creates meanwhile

    # --- the transport --------------------------------------------------------------------------
    def __call__(self, method: str, url: str, headers: Any, body: bytes | None) -> Response:
        self.requests.append((method, url, dict(headers)))
        parts = urllib.parse.urlsplit(url)
        if url.startswith(STORE):
            return self._storage(method, parts, dict(headers), body)
        assert parts.netloc == "management.azure.com", url
        if not dict(headers).get("Authorization", "").startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "no bearer token")
        query = urllib.parse.parse_qs(parts.query)
        if query.get("api-version") != [naming.REGISTRY_API]:
            return _error(400, "InvalidApiVersionParameter", f"api-version {query.get('api-version')}")
        if parts.path.startswith("/operations/"):
            statuses = self.operations[parts.path.rsplit("/", 1)[-1]]
            return Response(200, {}, {"status": statuses.pop(0) if len(statuses) > 1 else statuses[0]})
        match = ARM_PATH.fullmatch(parts.path)
        if not match:
            return _error(404, "NoRegisteredProviderFound", parts.path)
        key = (match["sub"], match["rg"], match["registry"])
        if key not in self.registries:
            return _error(404, "ResourceNotFound", f"The Resource 'Microsoft.MachineLearningServices/registries/"
                                                   f"{match['registry']}' under resource group '{match['rg']}' "
                                                   f"was not found.")
        document = json.loads(body) if body else None
        return self._registry(method, key, match["rest"] or "", query, document, dict(headers))

    # --- the control plane ----------------------------------------------------------------------
    def _registry(self, method: str, key: tuple[str, str, str], rest: str, query: dict[str, list[str]],
                  body: Any, headers: dict[str, str]) -> Response:
        models = self.registries[key]
        base = f"/subscriptions/{key[0]}/resourceGroups/{key[1]}/providers/Microsoft.MachineLearningServices/" \
               f"registries/{key[2]}"
        if rest == "" and method == "GET":
            return Response(200, {}, {"id": base, "name": key[2], "location": "westeurope", "properties": {}})
        found = re.fullmatch(r"/models/([^/]+)(/versions)?(?:/([^/]+))?(/startPendingUpload)?", rest)
        if not found:
            return _error(404, "NotFound", rest)
        model, listing, version, upload = found.groups()
        if not listing:
            if method == "GET":
                return Response(200, {}, models[model]["container"]) if model in models else \
                    _error(404, "UserError", f"Could not find asset with ID: azureml://registries/{key[2]}/models/"
                                             f"{model}")
            if method == "PUT":
                if not isinstance(body, dict) or set(body) != {"properties"}:
                    return _error(400, "UserError", "body must be {properties: ...}")
                models[model] = {"container": {"id": f"{base}/models/{model}", "name": model, **body},
                                 "versions": {}}
                return self._accepted(models[model]["container"])
        if model not in models:
            return _error(404, "UserError", f"Could not find asset with ID: azureml://registries/{key[2]}/models/"
                                            f"{model}")
        versions = models[model]["versions"]
        if version is None and method == "GET":  # RegistryModelVersions_List
            ordered = sorted(versions.values(), key=lambda v: v["systemData"]["createdAt"], reverse=True)
            skip = int(query.get("$skip", ["0"])[0])
            value = ordered[skip:skip + self.page]
            answer: dict[str, Any] = {"value": value}
            if skip + self.page < len(ordered):
                answer["nextLink"] = (f"https://management.azure.com{base}/models/{model}/versions?api-version="
                                      f"{naming.REGISTRY_API}&$skip={skip + self.page}")
            return Response(200, {}, answer)
        if upload and method == "POST":  # RegistryModelVersions_CreateOrGetStartPendingUpload
            if not isinstance(body, dict) or body.get("pendingUploadType") != "TemporaryBlobReference":
                return _error(400, "UserError", f"pendingUploadType must be TemporaryBlobReference; got {body}")
            directory = f"{STORE}/{key[2]}-blobs/{model}/{version}/{body.get('pendingUploadId') or 'x'}"
            signature = secrets.token_hex(8)
            self.grants[signature] = directory
            if self.race is not None:
                versions[version] = {**self.race, "name": version}
            return Response(200, {}, {
                "blobReferenceForConsumption": {
                    "blobUri": directory, "storageAccountArmId": "/subscriptions/x/storageAccounts/fakeregstore",
                    "credential": {"credentialType": "SAS", "sasUri": f"{directory}?sv=2023-11-03&sr=d&sp=racwl"
                                                                      f"&sig={signature}"}},
                "pendingUploadId": body.get("pendingUploadId"), "pendingUploadType": "TemporaryBlobReference"})
        if method == "GET":
            if self.deny_reads:
                return _error(403, "AuthorizationFailed", "The client does not have authorization to perform "
                                                          "action 'Microsoft.MachineLearningServices/registries/"
                                                          "models/versions/read'")
            if version not in versions:
                return _error(404, "UserError", f"Could not find asset with ID: azureml://registries/{key[2]}/models/"
                                                f"{model}/versions/{version}")
            return Response(200, {}, versions[version])
        if method == "PUT":
            if headers.get("If-None-Match") == "*" and version in versions:
                return _error(412, "PreconditionFailed", f"{model}:{version} exists")
            return self._put_version(base, model, version, versions, body)
        return _error(405, "MethodNotAllowed", f"{method} {rest}")

    def _put_version(self, base: str, model: str, version: str, versions: dict[str, Any], body: Any) -> Response:
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict) or set(body) != {"properties"}:
            return _error(400, "UserError", "body must be {properties: ...}")
        unknown = set(props) - WRITABLE
        if unknown:
            return _error(400, "UserError", f"read-only or unknown properties: {sorted(unknown)}")
        if props.get("modelType") not in ("mlflow_model", "custom_model", "triton_model"):
            return _error(400, "UserError", f"modelType {props.get('modelType')!r}")
        if version in versions:  # an existing version: only its tags, description, stage and archive flag change
            old = versions[version]["properties"]
            changed = {k for k in WRITABLE - MUTABLE if props.get(k) != old.get(k)}
            if changed:
                return _error(409, "UserError", f"model version {model}:{version} is immutable; changed: "
                                                f"{sorted(changed)}")
            versions[version]["properties"] = {**old, **props}
            versions[version]["systemData"]["lastModifiedAt"] = f"2026-12-01T10:{next(self.clock):02d}:00.1234567Z"
            return Response(200, {}, versions[version])
        uri = str(props.get("modelUri") or "")
        if props["modelType"] == "mlflow_model" and f"{uri.rstrip('/')}/MLmodel" not in self.blobs:
            return _error(400, "UserError", f"no MLmodel file at {uri}")
        versions[version] = {
            "id": f"{base}/models/{model}/versions/{version}", "name": version, "type": "versions",
            "properties": {**props, "provisioningState": "Succeeded"},
            "systemData": {"createdAt": f"2026-12-01T09:{next(self.clock):02d}:00.1234567Z", "createdBy": "someone"},
        }
        return self._accepted(versions[version])

    def _accepted(self, resource: dict[str, Any]) -> Response:
        operation = secrets.token_hex(4)
        self.operations[operation] = ["InProgress", "Failed" if self.fail_operations else "Succeeded"]
        poll = f"https://management.azure.com/operations/{operation}?api-version={naming.REGISTRY_API}"
        return Response(201, {"Azure-AsyncOperation": poll}, resource)

    # --- storage --------------------------------------------------------------------------------
    def _storage(self, method: str, parts: urllib.parse.SplitResult, headers: dict[str, str],
                 body: bytes | None) -> Response:
        if "Authorization" in headers:
            return Response(400, {}, "<Error><Code>InvalidAuthenticationInfo</Code></Error>")
        signature = urllib.parse.parse_qs(parts.query).get("sig", [""])[0]
        blob = f"{parts.scheme}://{parts.netloc}{urllib.parse.unquote(parts.path)}"
        if method != "PUT" or not blob.startswith(self.grants.get(signature, "-") + "/"):
            return Response(403, {}, "<Error><Code>AuthenticationFailed</Code></Error>")
        if headers.get("x-ms-blob-type") != "BlockBlob":
            return Response(400, {}, "<Error><Code>MissingRequiredHeader</Code></Error>")
        self.blobs[blob] = body or b""
        return Response(201, {}, None)

    def version(self, number: int, model: str = PLATFORM) -> dict[str, Any]:
        return self.registries[(DEV_SUB, RG, REGISTRY)][model]["versions"][str(number)]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAzureML:
    monkeypatch.chdir(ROOT)  # the blueprint's image contexts
    monkeypatch.setenv("MLOPS_APPROVER", "reviewer@example.com")
    (tmp_path / "namespaces.yaml").write_text(NAMESPACES)
    azure = FakeAzureML()
    monkeypatch.setattr(azure_registry, "client", lambda: Client(transport=azure, bearer=lambda: "token",
                                                                 sleep=lambda seconds: None))
    return azure


def _model(root: Path, roc_auc: float = 0.91) -> Path:
    model = root / f"model-{roc_auc}"
    (model / "nested").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {python_function: {loader_module: mlflow.sklearn}}\n")
    (model / "model.skops").write_bytes(b"weights")
    (model / "nested" / "conda.yaml").write_text("dependencies: []\n")
    (model / "evaluation.json").write_text(json.dumps({"metrics": {"roc_auc": roc_auc, "accuracy": 0.8}}))
    (model / "baseline.json").write_text(json.dumps({"version": 2, "features": {}}))
    return model


def _mlops(root: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--namespaces", str(root / "namespaces.yaml"),
                                     "--blueprint", "blueprints/financial_behavior.py"], catch_exceptions=False)


# --- naming ------------------------------------------------------------------------------------


def test_names_follow_azures_patterns_and_the_pin_takes_the_asset_id() -> None:
    assert naming.registry_name(PLATFORM, "dev") == REGISTRY
    assert naming.registry_id(DEV_SUB, PLATFORM, "dev") == (
        f"/subscriptions/{DEV_SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/registries/"
        f"{REGISTRY}")
    # the longest platform (24) and namespace (16) names: cut to 33 characters, the namespace whole
    long = naming.registry_name("a" * 20 + "-bcd", "n" * 15 + "1")
    assert len(long) == 33 and long.endswith("-" + "n" * 15 + "1") and naming.REGISTRY_NAME.fullmatch(long)
    cut = naming.registry_name("abcdefghijk-mnopqrstuvwx", "n" * 15 + "1")
    assert "--" not in cut and naming.REGISTRY_NAME.fullmatch(cut)  # no hyphen left dangling by the cut
    assert naming.model_name(PLATFORM) == PLATFORM
    assert naming.mounted_model_dir(PLATFORM, 3) == f"/var/azureml-app/azureml-models/{PLATFORM}/3/model"
    asset = naming.version_asset_id(PLATFORM, "dev", 7)
    assert asset == f"azureml://registries/{REGISTRY}/models/{PLATFORM}/versions/7"
    assert naming.ASSET_ID.fullmatch(asset)["version"] == "7"
    pin = parse(f"{PLATFORM}:\n  blue: {{version: 7, group: {PLATFORM}, image: 0123456789ab, sha256: {'a' * 64}, "
                f"artifact: {asset}}}\n", "dev.yaml")
    assert pin[PLATFORM]["blue"].artifact == asset
    with pytest.raises(NamespaceError, match=re.escape("artifact: expected an s3:// URI of a model.tar.gz, or the "
                                                       "azureml://")):
        parse(f"{PLATFORM}:\n  blue: {{version: 7, group: {PLATFORM}, image: 0123456789ab, sha256: {'a' * 64}, "
              f"artifact: azureml://registries/{REGISTRY}/models/{PLATFORM}/versions/latest}}\n", "dev.yaml")


def test_directory_sha256_is_the_digest_of_the_sorted_manifest(tmp_path: Path) -> None:
    model = _model(tmp_path)
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(model).as_posix()}\n"
                    for p in sorted(model.rglob("*"), key=lambda p: p.relative_to(model).as_posix()) if p.is_file())
    digest = azure_registry.directory_sha256(model)
    assert digest == hashlib.sha256(lines.encode()).hexdigest()
    (model / "nested" / "conda.yaml").write_text("dependencies: [numpy]\n")
    assert azure_registry.directory_sha256(model) != digest


# --- the lifecycle -----------------------------------------------------------------------------


def test_the_lifecycle_from_registration_to_a_pin(fake: FakeAzureML, tmp_path: Path) -> None:
    model = _model(tmp_path)
    registered = _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(model))
    assert registered.exit_code == 0, registered.output
    assert f"registered {PLATFORM} version 1 (PendingManualApproval)" in registered.output
    # Uploaded as a directory, every file to the SAS it was given, then the version PUT with its modelUri.
    version = fake.version(1)["properties"]
    files = {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*") if p.is_file()}
    assert version["modelUri"].endswith("/model")  # mounted as $AZUREML_MODEL_DIR/model
    baseline = version["properties"]["drift_baseline"]
    assert baseline == version["modelUri"].removesuffix("/model") + "/baseline.json"  # beside the model
    assert {f"{version['modelUri']}/{name}": data for name, data in files.items()} == \
        {url: data for url, data in fake.blobs.items() if url != baseline}
    assert json.loads(fake.blobs[baseline]) == {"version": 2, "features": {}}
    assert version["modelType"] == "mlflow_model" and version["tags"] == {"mlops-dsl:approval": "PendingManualApproval"}
    assert version["properties"]["artifact_sha256"] == azure_registry.directory_sha256(model)
    assert json.loads(version["properties"]["metrics"])["roc_auc"] == 0.91
    assert "sig=" not in registered.output  # the SAS is a credential
    # the creation was followed to its end: each operation was polled until it was no longer InProgress
    assert all(statuses == ["Succeeded"] for statuses in fake.operations.values()) and len(fake.operations) == 2

    refused = _mlops(tmp_path, "models", "promote", "-n", "dev", "--variant", "blue", "--version", "1")
    assert refused.exit_code == 1
    assert f"refused: {PLATFORM} version 1 is PendingManualApproval, not Approved" in refused.output
    assert not (tmp_path / "models" / "dev.yaml").exists()

    approved = _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "1", "--reason", "reviewed")
    assert approved.exit_code == 0, approved.output
    assert "PendingManualApproval -> Approved" in approved.output
    tags = fake.version(1)["properties"]["tags"]
    assert tags["mlops-dsl:approval"] == "Approved" and tags["mlops-dsl:approval-reason"] == "reviewed"
    assert tags["mlops-dsl:approval-by"] == "reviewer@example.com" and tags["mlops-dsl:approval-at"].endswith("+00:00")
    assert fake.version(1)["properties"]["modelUri"] == version["modelUri"]  # the PUT kept the rest as it was

    early = _mlops(tmp_path, "models", "promote", "-n", "staging", "--variant", "blue", "--version", "1")
    assert early.exit_code == 1 and "refused: dev does not serve version 1" in early.output

    promoted = _mlops(tmp_path, "models", "promote", "-n", "dev", "--variant", "blue", "--version", "1")
    assert promoted.exit_code == 0, promoted.output
    assert f"{PLATFORM}.blue: nothing -> version 1" in promoted.output
    pin = parse((tmp_path / "models" / "dev.yaml").read_text(), "dev.yaml")[PLATFORM]["blue"]
    assert (pin.version, pin.group) == (1, PLATFORM)
    assert pin.artifact == f"azureml://registries/{REGISTRY}/models/{PLATFORM}/versions/1"
    assert pin.sha256 == azure_registry.directory_sha256(model) and re.fullmatch(r"[0-9a-f]{12}", pin.image)
    assert _mlops(tmp_path, "models", "promote", "-n", "staging", "--variant", "blue",
                  "--version", "1").exit_code == 0

    # a second version, so that the list follows nextLink (one version per page)
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(model)).exit_code == 0
    listed = _mlops(tmp_path, "models", "list", "-n", "staging")
    assert listed.exit_code == 0, listed.output
    assert f"{PLATFORM}: {PLATFORM} in namespace dev (2 versions)" in listed.output
    rows = [line.split() for line in listed.output.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [row[0] for row in rows] == ["2", "1"]
    assert rows[1][1] == "Approved" and "0.9100" in rows[1] and "dev:blue," in rows[1] and "staging:blue" in rows[1]
    assert rows[0][1] == "PendingManualApproval" and rows[0][-1] == "-"

    spaces = load(tmp_path / "namespaces.yaml")
    assert check_pins(spaces["staging"], [PLATFORM], cloud="azure") == []
    rejected = _mlops(tmp_path, "models", "reject", "-n", "dev", "--version", "1", "--reason", "leaks a label")
    assert rejected.exit_code == 0
    assert "version 1 is pinned in dev:blue, staging:blue" in rejected.output
    assert fake.version(1)["properties"]["tags"]["mlops-dsl:approval"] == "Rejected"
    problems = check_pins(load(tmp_path / "namespaces.yaml")["staging"], [PLATFORM], cloud="azure")
    assert problems == [f"{tmp_path / 'models' / 'staging.yaml'}: {PLATFORM}.blue pins {PLATFORM} version 1, "
                        f"which is Rejected: promote an Approved version"]


def test_the_first_registration_creates_the_model_and_a_reason_does_not_outlive_its_decision(
        fake: FakeAzureML, tmp_path: Path) -> None:
    assert fake.registries[(DEV_SUB, RG, REGISTRY)] == {}  # no model yet: the list is empty, not an error
    empty = _mlops(tmp_path, "models", "list", "-n", "dev")
    assert empty.exit_code == 0 and "no version registered yet" in empty.output
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path))).exit_code == 0
    assert fake.registries[(DEV_SUB, RG, REGISTRY)][PLATFORM]["container"]["properties"]["description"]
    assert _mlops(tmp_path, "models", "reject", "-n", "dev", "--version", "1", "--reason", "why").exit_code == 0
    assert _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "1").exit_code == 0
    tags = fake.version(1)["properties"]["tags"]
    assert tags["mlops-dsl:approval"] == "Approved" and "mlops-dsl:approval-reason" not in tags
    again = _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "1")
    assert again.exit_code == 0 and f"{PLATFORM} version 1 already is Approved" in again.output


def test_a_version_registered_elsewhere_is_pending_and_needs_its_digest(fake: FakeAzureML, tmp_path: Path) -> None:
    """A version without the approval tag (a job registered it) is PendingManualApproval; one without the
    artifact's digest may be approved but not pinned."""
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path))).exit_code == 0
    versions = fake.registries[(DEV_SUB, RG, REGISTRY)][PLATFORM]["versions"]
    versions["2"] = json.loads(json.dumps(versions["1"]).replace('/versions/1"', '/versions/2"'))
    versions["2"]["name"] = "2"
    versions["2"]["properties"]["tags"] = {}
    versions["2"]["properties"]["properties"] = {}
    refused = _mlops(tmp_path, "models", "promote", "-n", "dev", "--variant", "blue", "--version", "2")
    assert refused.exit_code == 1 and "version 2 is PendingManualApproval, not Approved" in refused.output
    assert _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "2").exit_code == 0
    undigested = _mlops(tmp_path, "models", "promote", "-n", "dev", "--variant", "blue", "--version", "2")
    assert undigested.exit_code == 1
    assert f"version 2 of model {PLATFORM} of Azure ML registry {REGISTRY} has no artifact_sha256 property" \
        in undigested.output
    assert not (tmp_path / "models" / "dev.yaml").exists()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "expected"), [
    (("promote", "-n", "dev", "--variant", "green", "--version", "9"), 2,
     f"model {PLATFORM} of Azure ML registry {REGISTRY} has no version 9 (`mlops models list -n dev` lists them)"),
    (("approve", "-n", "dev", "--version", "9"), 2, f"model {PLATFORM} of Azure ML registry {REGISTRY} has no "
                                                    f"version 9"),
    (("promote", "-n", "dev", "--variant", "red", "--version", "1"), 2,
     f"--variant red: ModelServing of '{PLATFORM}' has no such variant (variants: blue, green)"),
    (("list", "-n", "dev", "--platform", "financial"), 2, "--platform financial: no AWS platform nor Azure platform"),
    (("register", "-n", "dev", "--model", "/nonexistent"), 2, "not an MLflow model directory"),
])
def test_user_errors_exit_2_naming_the_value(fake: FakeAzureML, tmp_path: Path, args, code: int,
                                             expected: str) -> None:
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path))).exit_code == 0
    result = _mlops(tmp_path, "models", *args)
    assert result.exit_code == code, result.output
    assert expected in result.output


@pytest.mark.parametrize("args", [
    ("list", "-n", "dev"),
    ("approve", "-n", "dev", "--version", "1"),
    ("promote", "-n", "staging", "--variant", "blue", "--version", "1"),
])
def test_a_registry_that_does_not_exist_fails_naming_it(fake: FakeAzureML, tmp_path: Path, args) -> None:
    fake.registries.clear()
    result = _mlops(tmp_path, "models", *args)
    assert result.exit_code == 1, result.output
    assert (f"Azure ML registry {REGISTRY} does not exist (resource group {RG}, subscription {DEV_SUB}): apply the "
            f"stacks of namespace 'dev', which owns it, first") in result.output


def test_a_registration_without_a_registry_uploads_nothing(fake: FakeAzureML, tmp_path: Path) -> None:
    fake.registries.clear()
    result = _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path)))
    assert result.exit_code == 1 and f"Azure ML registry {REGISTRY} does not exist" in result.output
    assert fake.blobs == {}


def test_azures_errors_name_the_registry_model_version_and_azures_message(fake: FakeAzureML, tmp_path: Path) -> None:
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path))).exit_code == 0
    fake.deny_reads = True
    denied = _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "1")
    assert denied.exit_code == 1
    assert (f"describing version 1 of model {PLATFORM} of Azure ML registry {REGISTRY}: HTTP 403: "
            f"AuthorizationFailed: The client does not have authorization") in denied.output
    fake.deny_reads = False
    fake.fail_operations = True
    failed = _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path, 0.9)))
    assert failed.exit_code == 1
    assert "creating model" not in failed.output  # the model exists: only the version's operation failed
    assert f"registering version 2 of model {PLATFORM} of Azure ML registry {REGISTRY}: Failed" in failed.output


def test_a_model_below_the_gate_is_not_uploaded(fake: FakeAzureML, tmp_path: Path) -> None:
    result = _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path, roc_auc=0.6)))
    assert result.exit_code == 1
    assert "roc_auc 0.6000, below the quality gate of 0.78" in result.output
    assert fake.blobs == {} and fake.requests == []


def test_a_namespace_with_both_clouds_needs_the_platform_named(fake: FakeAzureML, tmp_path: Path) -> None:
    both = NAMESPACES.replace("  dev:\n", '  dev:\n    aws: {account_id: "111111111111", region: eu-west-1, '
                                           'backend: {bucket: s-dev}}\n')
    (tmp_path / "namespaces.yaml").write_text(both)
    blueprints = ["--blueprint", "blueprints/customer_churn.py", "--blueprint", "blueprints/financial_behavior.py"]
    ambiguous = CliRunner().invoke(main, ["models", "approve", "-n", "dev", "--version", "1", "--namespaces",
                                          str(tmp_path / "namespaces.yaml"), *blueprints])
    assert ambiguous.exit_code == 2
    assert "namespace 'dev' serves 2 platforms (customer-churn, financial-behavior): name one with --platform" \
        in ambiguous.output
    named = CliRunner().invoke(main, ["models", "list", "-n", "dev", "--platform", PLATFORM, "--namespaces",
                                      str(tmp_path / "namespaces.yaml"), *blueprints])
    assert named.exit_code == 0, named.output
    assert f"{PLATFORM}: {PLATFORM} in namespace dev (0 versions)" in named.output
    assert all(url.startswith("https://management.azure.com/") for _, url, _ in fake.requests)  # no AWS call


def test_a_version_registered_meanwhile_is_never_overwritten(fake: FakeAzureML, tmp_path: Path) -> None:
    assert _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path))).exit_code == 0
    assert _mlops(tmp_path, "models", "approve", "-n", "dev", "--version", "1").exit_code == 0
    fake.race = json.loads(json.dumps(fake.version(1)))  # an approved version 2 appears during the next upload
    raced = _mlops(tmp_path, "models", "register", "-n", "dev", "--model", str(_model(tmp_path, 0.95)))
    assert raced.exit_code == 1
    assert (f"registering version 2 of model {PLATFORM} of Azure ML registry {REGISTRY}: the version exists "
            f"already") in raced.output
    assert fake.version(2)["properties"] == fake.version(1)["properties"]  # untouched
    assert not any(method == "PUT" and url.split("?")[0].endswith("/versions/2") for method, url, _ in fake.requests)
