"""A smoke test of one online deployment, through its endpoint's scoring URI, before it gets traffic.

Azure ML routes a request to a named deployment, whatever the traffic map says, when the request
carries the `azureml-model-deployment` header: "When you invoke an endpoint, you can specify the
name of any of its deployments - even a shadow deployment - to return the prediction"
(https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints, "Test
the new deployment"). So a deployment at 0% is scored with the model's input example and nothing
a client sees changes.

The scoring URI is the endpoint's `properties.scoringUri`; the credential depends on the
endpoint's `properties.authMode` (https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint):

- `Key`: `POST {endpoint}/listKeys` answers `primaryKey` / `secondaryKey` (OnlineEndpoints_ListKeys);
- `AMLToken`: `POST {endpoint}/token` answers `accessToken` (OnlineEndpoints_GetToken);
- `AADToken` (what the serving stack renders): a Microsoft Entra token for `https://ml.azure.com`
  (`az account get-access-token --resource https://ml.azure.com`; or AZUREML_SCORING_TOKEN), whose
  principal needs the
  `Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action` permission.

Either is sent as `Authorization: Bearer <key or token>`. The control-plane operations use
ML_API_VERSION, from the spec file named next to it. `smoke_test()` is what a later `mlops smoke`
command calls too; the rollout (rollout.py) calls it for each new deployment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MlopsError, OperationError
from .arm import MANAGEMENT, Client, Response, error_message, token

# Azure/azure-rest-api-specs: specification/machinelearningservices/resource-manager/
# Microsoft.MachineLearningServices/stable/2024-10-01/mfe.json (online endpoints and deployments;
# the version the serving stack's azapi resources use, mlops_dsl/azure/common.py ML_API).
ML_API_VERSION = "2024-10-01"
DATA_PLANE = "https://ml.azure.com"
DEPLOYMENT_HEADER = "azureml-model-deployment"
SCORING_TOKEN_ENV = "AZUREML_SCORING_TOKEN"
# Answers worth one more try: throttling and the gateway's own errors while a deployment warms up.
TRANSIENT = (429, 502, 503, 504)


class SmokeFailure(OperationError):
    """The deployment answered, but not as a healthy model does."""


def arm_url(resource_id: str, suffix: str = "", api_version: str = ML_API_VERSION) -> str:
    return f"{MANAGEMENT}{resource_id}{suffix}?api-version={api_version}"


def load_example(path: Path) -> bytes:
    """The input example, as bytes to send; a missing or non-JSON file is the caller's mistake."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MlopsError(f"smoke request {path}: {exc.strerror or exc}") from None
    try:
        json.loads(raw)
    except ValueError as exc:
        raise MlopsError(f"smoke request {path}: not JSON ({exc})") from None
    return raw


def data_plane_token() -> str:
    """A Microsoft Entra token for scoring: AZUREML_SCORING_TOKEN, else the Azure CLI's or
    azure-identity's for https://ml.azure.com. AZURE_ACCESS_TOKEN (arm.token's first choice) is a
    management token, which the scoring URI refuses, so it is set aside for this one look-up."""
    if os.environ.get(SCORING_TOKEN_ENV):
        return os.environ[SCORING_TOKEN_ENV]
    management = os.environ.pop("AZURE_ACCESS_TOKEN", None)
    try:
        return token(DATA_PLANE)
    finally:
        if management is not None:
            os.environ["AZURE_ACCESS_TOKEN"] = management


def credential(client: Client, endpoint_id: str, endpoint: dict[str, Any],
               data_bearer: Callable[[], str] = data_plane_token) -> str:
    """The key or token the endpoint's auth mode takes for scoring."""
    mode = (endpoint.get("properties") or {}).get("authMode")
    if mode == "Key":
        keys = client.call("POST", arm_url(endpoint_id, "/listKeys"), ok=(200,)).body or {}
        secret = keys.get("primaryKey") or keys.get("secondaryKey")
    elif mode == "AMLToken":
        secret = (client.call("POST", arm_url(endpoint_id, "/token"), ok=(200,)).body or {}).get("accessToken")
    elif mode == "AADToken":
        secret = data_bearer()
    else:
        raise OperationError(f"online endpoint {endpoint_id}: unknown authMode {mode!r} (expected Key, AMLToken "
                             "or AADToken)")
    if not secret:
        raise OperationError(f"online endpoint {endpoint_id}: no credential in the {mode} answer")
    return str(secret)


def expect_predictions(body: Any) -> str | None:
    """What is wrong with this platform's serving answer (`{"predictions": [...]}`), or None."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {str(body)[:200]!r}"
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or not predictions:
        return f"expected a non-empty `predictions` list, got {json.dumps(body)[:200]}"
    return None


def score(client: Client, scoring_uri: str, deployment: str, secret: str, body: bytes, attempts: int = 3,
          retry_seconds: float = 10.0, check: Callable[[Any], str | None] = expect_predictions) -> Any:
    """POST the example to `deployment` alone; raise SmokeFailure unless it answers 200 as `check` wants."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json",
               DEPLOYMENT_HEADER: deployment}
    answer: Response | None = None
    for attempt in range(1, attempts + 1):
        try:
            answer = client.transport("POST", scoring_uri, headers, body)
        except OperationError as exc:  # no connection: the private endpoint, DNS, a firewall
            raise SmokeFailure(f"smoke test of deployment {deployment}: {exc}") from None
        if answer.status not in TRANSIENT or attempt == attempts:
            break
        client.sleep(retry_seconds)
    assert answer is not None
    if answer.status != 200:
        raise SmokeFailure(f"smoke test of deployment {deployment}: HTTP {answer.status}: {error_message(answer)}")
    problem = check(answer.body)
    if problem:
        raise SmokeFailure(f"smoke test of deployment {deployment}: {problem}")
    return answer.body


def smoke_test(client: Client, endpoint_id: str, deployment: str, body: bytes,
               data_bearer: Callable[[], str] = data_plane_token, endpoint: dict[str, Any] | None = None,
               **kwargs: Any) -> Any:
    """Score `body` on `deployment` of the online endpoint `endpoint_id`; its answer, or SmokeFailure."""
    if endpoint is None:
        endpoint = client.get(arm_url(endpoint_id))
    uri = (endpoint.get("properties") or {}).get("scoringUri")
    if not uri:
        raise OperationError(f"online endpoint {endpoint_id} has no scoringUri yet")
    return score(client, uri, deployment, credential(client, endpoint_id, endpoint, data_bearer), body, **kwargs)


__all__ = ["DATA_PLANE", "DEPLOYMENT_HEADER", "ML_API_VERSION", "SCORING_TOKEN_ENV", "SmokeFailure", "arm_url",
           "credential", "data_plane_token", "expect_predictions", "load_example", "score", "smoke_test"]
