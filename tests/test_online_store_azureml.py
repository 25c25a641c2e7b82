"""Online features on Azure: the server reads the Azure ML feature store's online store in Redis.

The store is fakeredis, filled the way the azureml-featurestore SDK's schema-1 materialization
script writes it (1.2.2, `_online_feature_materialization/v1/`: the key is the lower-cased prefix
followed by `<index column>:<value>`, each feature a hash field, doubles as base64 msgpack, other
values as `str()`, and the timestamp field); the keys below are spelled out from that script, not
from the reader. Resource Manager and the identity's tokens are stand-ins that count their calls;
the timeout is a real redis-py client against a socket that never answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import urllib.error
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
fakeredis = pytest.importorskip("fakeredis")
msgpack = pytest.importorskip("msgpack")

from serving import online_features, online_store_azureml  # noqa: E402
from serving.online_store_azureml import FeatureSet, decode, lookup_key  # noqa: E402
from serving.settings import SettingsError  # noqa: E402

from .test_online_features import STORED, _id_request, _server  # noqa: E402
from .test_serving import _call, _ready, save_trained  # noqa: E402

GUID = "0A1B2C3D-4E5F-6789-ABCD-EF0123456789"  # the feature store's workspaceId
VERSION_ID = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/"
              "mlw-fs/featuresets/Customer/versions/1")
DOUBLES = ["monthly_charges", "total_charges"]
CONFIG = {"store": "azureml", "redis_host": "redis-x.redis.cache.windows.net", "identity_client_id": "client",
          "identity_object_id": "object-id", "feature_store_guid": GUID, "timeout_ms": 200,
          "groups": [{"name": "Customer", "version": "1", "version_id": VERSION_ID, "record_id": "customer_id",
                      "features": STORED, "encoded": DOUBLES}]}
# The SDK's prefix, lower-cased, then the Lua script's `<column>:<value>` (materialization version 7)
PREFIX = f"featurestore:{GUID.lower()}:featureset:customer:version:1:7:"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("online-azure") / "model")


def _materialize(redis: Any, x, rows: list[int], prefix: str = PREFIX) -> None:
    """What the schema-1 materialization script leaves: HSET of each value column and the timestamp."""
    for i in rows:
        key = f"{prefix}customer_id:c-{i}"
        for f in STORED:
            value = x.iloc[i][f]
            value = value.item() if hasattr(value, "item") else value
            if f in DOUBLES:
                stored = base64.b64encode(msgpack.packb(None if value != value else float(value))).decode()
            else:
                stored = str(None if value != value else value)
            redis.hset(key, f, stored)
        redis.hset(key, "event_time", str(int(time.time())))


class _Arm:
    def __init__(self, version: str | None = "7"):
        self.version = version
        self.calls: list[str] = []

    def __call__(self, url: str, token: str, timeout: float) -> dict[str, Any]:
        self.calls.append(url)
        assert token == "arm-token" and timeout == 0.2
        return {"properties": {"properties": {"onlineMaterializationVersion": self.version}}}


def _tokens(scope: str) -> tuple[str, float]:
    return ("redis-token" if "redis" in scope else "arm-token"), time.time() + 3600


def _azure_server(directory, redis: Any, arm: _Arm):
    server = _server(directory, CONFIG)
    assert server.online is not None
    reader = server.online.fetch  # built from ONLINE_FEATURES, as in the image
    assert isinstance(reader, online_store_azureml.AzureMLOnlineStore)
    reader._token = _tokens
    reader._client_factory = lambda store, password: redis
    reader._get = arm
    return server, reader


def test_the_key_and_the_values_are_the_sdks() -> None:
    fs = FeatureSet("Customer", "1", VERSION_ID, "customer_id", frozenset(DOUBLES))
    assert lookup_key(GUID, fs, "7", "C-1") == f"{PREFIX}customer_id:C-1"  # the id keeps its case
    unversioned = f"featurestore:{GUID.lower()}:featureset:customer:version:1:customer_id:C-1"
    assert lookup_key(GUID, fs, None, "C-1") == unversioned
    assert decode(base64.b64encode(msgpack.packb(70.35)), True) == "70.35"
    assert decode(base64.b64encode(msgpack.packb(None)), True) is None
    assert decode(b"12", False) == "12" and decode(b"None", False) is None and decode(b"Month-to-month", False)
    with pytest.raises(ValueError, match="msgpack"):
        decode(b"12", True)


def test_a_request_with_only_the_id_gets_the_full_requests_answer(trained) -> None:
    _, directory, x = trained
    redis, arm = fakeredis.FakeRedis(), _Arm()
    _materialize(redis, x, [0, 1])
    server, _ = _azure_server(directory, redis, arm)
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0, 1])))
    assert status == 200, body
    plain = asyncio.run(_ready(directory, SERVING_ENGINE="sklearn"))
    full = json.dumps({"dataframe_records": json.loads(x.head(2).to_json(orient="records"))}).encode()
    assert json.loads(body) == json.loads(asyncio.run(_call(plain, "POST", "/invocations", full))[1])
    asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [1])))
    assert arm.calls == [f"https://management.azure.com{VERSION_ID}?api-version=2024-10-01"]  # read once, kept


def test_a_missing_record_is_a_404_naming_it_and_the_version_is_read_again(trained) -> None:
    _, directory, x = trained
    redis, arm = fakeredis.FakeRedis(), _Arm()
    _materialize(redis, x, [0])
    server, reader = _azure_server(directory, redis, arm)
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0, 3])))
    assert status == 404 and "'c-3'" in json.loads(body)["message"] and "'c-0'" not in json.loads(body)["message"]
    assert len(arm.calls) == 1  # one id was found: the version is right
    # The online store was re-enabled: a new materialization version, the old keys gone.
    redis.flushall()
    arm.version = "8"
    _materialize(redis, x, [0], prefix=PREFIX.replace(":7:", ":8:"))
    reader._versions = {name: (v, when - 60) for name, (v, when) in reader._versions.items()}
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
    assert status == 200, body
    assert len(arm.calls) == 2


def test_a_store_that_refuses_is_a_503_and_resource_manager_too(trained) -> None:
    _, directory, x = trained

    class Refusing(fakeredis.FakeRedis):
        def pipeline(self, *args, **kwargs):
            import redis

            raise redis.exceptions.AuthenticationError("invalid username-password pair")

    server, _ = _azure_server(directory, Refusing(), _Arm())
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
    assert status == 503 and "AuthenticationError" in json.loads(body)["message"]
    assert server.health("/ping")[0] == 200

    def forbidden(url: str, token: str, timeout: float) -> dict[str, Any]:
        raise urllib.error.HTTPError(url, 403, "Forbidden", {}, None)  # type: ignore[arg-type]

    server, _ = _azure_server(directory, fakeredis.FakeRedis(), forbidden)  # type: ignore[arg-type]
    status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
    assert status == 503 and "HTTP 403" in json.loads(body)["message"]


def test_a_cache_that_does_not_answer_is_a_504_within_the_bound(trained) -> None:
    """The image's own client (TLS, Entra user and token, one attempt) against a silent socket."""
    _, directory, x = trained
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        server = _server(directory, {**CONFIG, "redis_host": "127.0.0.1", "redis_port": silent.getsockname()[1]})
        assert server.online is not None
        reader = server.online.fetch
        reader._token, reader._get = _tokens, _Arm()
        began = time.monotonic()
        status, body, _ = asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))
        took = time.monotonic() - began
    assert status == 504, body
    assert "within 200 ms" in json.loads(body)["message"]
    assert took < 3, f"{took:.1f} s: one attempt of 200 ms"
    client = online_store_azureml.redis_client(reader.store, "redis-token")
    settings = client.connection_pool.connection_kwargs
    assert settings["username"] == "object-id" and settings["password"] == "redis-token"
    assert settings["socket_timeout"] == 0.2 and client.connection_pool.connection_class.__name__ == "SSLConnection"


def test_the_redis_client_is_rebuilt_with_a_fresh_token_before_it_expires(trained) -> None:
    _, directory, x = trained
    redis = fakeredis.FakeRedis()
    _materialize(redis, x, [0])
    server, reader = _azure_server(directory, redis, _Arm())
    now = [time.time()]
    issued: list[str] = []

    def tokens(scope: str) -> tuple[str, float]:
        issued.append(scope)
        return _tokens(scope)[0], now[0] + 3600

    reader._token, reader._clock = tokens, lambda: now[0]
    for _ in range(3):
        assert asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))[0] == 200
    assert issued.count(online_store_azureml.REDIS_SCOPE) == 1
    now[0] += 3600 - 200  # within RENEW_SECONDS of the token's end
    assert asyncio.run(_call(server, "POST", "/invocations", _id_request(x, [0])))[0] == 200
    assert issued.count(online_store_azureml.REDIS_SCOPE) == 2


@pytest.mark.parametrize("change, message", [
    ({"store": "dynamo"}, "store must be one of"),
    ({"redis_host": None}, "redis_host is required"),
    ({"redis_port": "6380"}, "redis_port"),
    ({"groups": [{"name": "Customer", "record_id": "customer_id", "features": STORED}]}, "groups[0] needs 'version'"),
])
def test_a_bad_azure_setting_is_refused_naming_it(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match="ONLINE_FEATURES") as caught:
        online_features.load({"ONLINE_FEATURES": json.dumps({**CONFIG, **change})})
    assert message in str(caught.value)

