"""The Azure ML feature store's online store, read as its own SDK reads it, with the endpoint's identity.

Azure ML materializes a feature set into Azure Cache for Redis (features.py of the Azure renderer
attaches the cache). The layout is the azureml-featurestore SDK's, read from its source (1.2.2,
`azureml/featurestore/online/_utils.py`, `_online_feature_getter_v3.py` and the schema-1
materialization script `_online_feature_materialization/v1/`): one hash per record at

    featurestore:<feature store guid>:featureset:<name>:version:<version>:[<online materialization version>:]
    <record id column>:<id>

(lower-cased up to the record id column, trailing ':' of the prefix dropped), one field per feature
plus the event timestamp. Strings and integers are stored as text (`str()` of the Spark value, so a
null is "None"), doubles as base64 of their msgpack encoding. That is schema 1 of a feature set
specification, the SDK's default and the one mlops_dsl/azure/featureset_spec.py renders; schema 2
(md5 of the prefix, struct-packed values) is not read here.

What the layout needs that the blueprint cannot know is the online materialization version: Azure
ML records it on the feature set version (`properties.properties.onlineMaterializationVersion`)
when online materialization is enabled. The reader GETs the version from Resource Manager with the
endpoint's identity (a custom role allowing `workspaces/featuresets/read` and `workspaces/read` on
the feature store, the individual actions Microsoft lists for a feature store consumer), keeps it
for `VERSION_SECONDS`, and re-reads it sooner when none of a request's ids is found (a feature set
whose online store was re-enabled gets a new version, and its old keys expire).

Redis takes the identity's Entra ID token as the password and its object id as the user name
(Azure Cache for Redis, "Use Microsoft Entra ID for cache authentication"; the cache's custom data
access policy lets the endpoint's identity run HMGET on this store's keys, features.py). A token
lives about an hour and the cache closes connections whose token expired, so the client is rebuilt
with a fresh token `RENEW_SECONDS` before expiry. One attempt per call, bounded by `timeout_ms`:
past it the request is a 504; a refusal or an unreachable cache or Resource Manager is a 503
(serving/online_features.py).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .online_features import StoreError

REDIS_SCOPE = "https://redis.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
ARM = "https://management.azure.com"
ARM_API = "2024-10-01"  # FeaturesetVersions_Get, the renderer's ML_API
VERSION_SECONDS = 300.0
VERSION_RETRY_SECONDS = 30.0
RENEW_SECONDS = 300.0


@dataclass(frozen=True)
class FeatureSet:
    name: str
    version: str
    version_id: str  # the feature set version's ARM id, where its online materialization version is read
    record_id: str
    encoded: frozenset[str]  # features stored as base64 msgpack (the doubles)


@dataclass(frozen=True)
class Store:
    host: str
    port: int
    client_id: str  # the endpoint identity's client id, for its token
    object_id: str  # its object (principal) id: the Redis user name
    feature_store_guid: str
    feature_sets: dict[str, FeatureSet]
    timeout_ms: int


def lookup_key(guid: str, feature_set: FeatureSet, materialization: str | None, value: str) -> str:
    """The hash of one record, as the SDK's schema-1 getter formats it."""
    prefix = f"featurestore:{guid}:featureset:{feature_set.name}:version:{feature_set.version}:"
    if materialization:
        prefix = f"{prefix}{materialization}:"
    return f"{prefix.lower().rstrip(':')}:{feature_set.record_id}:{value}"


def decode(raw: bytes, encoded: bool) -> str | None:
    """A stored value as the text the server's row check reads (None: missing); ValueError if unreadable."""
    if not encoded:
        text = raw.decode("utf-8")
        return None if text == "None" else text  # str() of a Spark null
    import msgpack

    try:
        value = msgpack.unpackb(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise ValueError(f"not base64 msgpack ({exc})") from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a {type(value).__name__}, not a number")
    return repr(float(value))


Token = Callable[[str], tuple[str, float]]  # scope -> (token, expires at, epoch seconds)


def identity_token(client_id: str) -> Token:
    """The user-assigned identity's tokens (azure-identity, as Azure ML's managed identity docs show)."""
    from azure.identity import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=client_id)

    def token(scope: str) -> tuple[str, float]:
        t = credential.get_token(scope)
        return t.token, float(t.expires_on)
    return token


def redis_client(store: Store, password: str) -> Any:
    """TLS on the cache's SSL port, Entra ID credentials, one attempt bounded by the timeout."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    seconds = store.timeout_ms / 1000
    return redis.Redis(host=store.host, port=store.port, ssl=True, username=store.object_id, password=password,
                       socket_timeout=seconds, socket_connect_timeout=seconds, retry=Retry(NoBackoff(), 0),
                       health_check_interval=0)


def arm_get(url: str, token: str, timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


class AzureMLOnlineStore:
    """A BatchGetRecord-shaped reader of the Azure ML online store (serving/online_features.py's Fetch)."""

    def __init__(self, store: Store, token: Token | None = None,
                 client: Callable[[Store, str], Any] = redis_client,
                 get: Callable[[str, str, float], dict[str, Any]] = arm_get,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self._token = token
        self._client_factory = client
        self._get = get
        self._clock = clock
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_expires = 0.0
        self._versions: dict[str, tuple[str | None, float]] = {}

    @property
    def token(self) -> Token:
        if self._token is None:  # built on first use: importing azure-identity costs start-up time
            self._token = identity_token(self.store.client_id)
        return self._token

    def __call__(self, identifiers: list[dict[str, Any]]) -> dict[str, Any]:
        records = self._read(identifiers, refresh=False)
        if not records and any(i["RecordIdentifiersValueAsString"] for i in identifiers):
            stale = [i["FeatureGroupName"] for i in identifiers
                     if self._clock() - self._versions.get(i["FeatureGroupName"], (None, 0.0))[1]
                     > VERSION_RETRY_SECONDS]
            if stale:  # nothing found: the materialization version may have moved; read it again once
                records = self._read(identifiers, refresh=True, only=set(stale))
        return {"Records": records, "Errors": [], "UnprocessedIdentifiers": []}

    def _read(self, identifiers: list[dict[str, Any]], refresh: bool,
              only: set[str] | None = None) -> list[dict[str, Any]]:
        plan = []
        for ident in identifiers:
            feature_set = self.store.feature_sets[ident["FeatureGroupName"]]
            if only is not None and feature_set.name not in only:
                continue
            version = self._materialization(feature_set, refresh)
            for value in ident["RecordIdentifiersValueAsString"]:
                plan.append((feature_set, ident["FeatureNames"], value,
                             lookup_key(self.store.feature_store_guid, feature_set, version, value)))
        if not plan:
            return []
        import redis

        try:
            pipe = self._redis().pipeline(transaction=False)
            for _, names, _, key in plan:
                pipe.hmget(key, names)
            answers = pipe.execute()
        except redis.exceptions.TimeoutError:
            raise StoreError(504, f"the online store did not answer within {self.store.timeout_ms} ms "
                                  f"(ONLINE_FEATURES timeout_ms)") from None
        except redis.exceptions.RedisError as exc:
            self._drop_client()
            raise StoreError(503, f"the online store refused the read: {type(exc).__name__}: {exc}") from None
        records = []
        for (feature_set, names, value, key), values in zip(plan, answers, strict=True):
            if all(v is None for v in values):
                continue  # no such hash: the record is not in the store
            record = []
            for name, raw in zip(names, values, strict=True):
                if raw is None:
                    continue
                try:
                    text = decode(raw, name in feature_set.encoded)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise StoreError(503, f"the online store holds an unreadable {name!r} at {key}: {exc}") from None
                if text is not None:
                    record.append({"FeatureName": name, "ValueAsString": text})
            records.append({"FeatureGroupName": feature_set.name, "RecordIdentifierValueAsString": value,
                            "Record": record})
        return records

    def _materialization(self, feature_set: FeatureSet, refresh: bool) -> str | None:
        """The feature set version's online materialization version, from Resource Manager."""
        cached = self._versions.get(feature_set.name)
        now = self._clock()
        if cached is not None and not refresh and now - cached[1] < VERSION_SECONDS:
            return cached[0]
        seconds = self.store.timeout_ms / 1000
        url = f"{ARM}{feature_set.version_id}?api-version={ARM_API}"
        try:
            token, _ = self.token(ARM_SCOPE)
            doc = self._get(url, token, seconds)
        except TimeoutError:
            raise StoreError(504, f"Resource Manager did not answer within {self.store.timeout_ms} ms for "
                                  f"feature set {feature_set.name!r}") from None
        except urllib.error.HTTPError as exc:
            raise StoreError(503, f"Resource Manager refused reading feature set {feature_set.name!r} version "
                                  f"{feature_set.version}: HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise StoreError(504, f"Resource Manager did not answer within {self.store.timeout_ms} ms "
                                      f"for feature set {feature_set.name!r}") from None
            raise StoreError(503, f"Resource Manager cannot be reached: {exc.reason}") from None
        except Exception as exc:  # azure-identity's errors: the identity has no token to give
            raise StoreError(503, f"no token for the endpoint's identity: {type(exc).__name__}: {exc}") from None
        properties = ((doc.get("properties") or {}).get("properties") or {}) if isinstance(doc, dict) else {}
        version = properties.get("onlineMaterializationVersion") or None
        self._versions[feature_set.name] = (str(version) if version is not None else None, now)
        return self._versions[feature_set.name][0]

    def _redis(self) -> Any:
        with self._lock:
            if self._client is None or self._client_expires - self._clock() < RENEW_SECONDS:
                try:
                    token, expires = self.token(REDIS_SCOPE)
                except Exception as exc:  # azure-identity's errors
                    raise StoreError(503, f"no Redis token for the endpoint's identity: "
                                          f"{type(exc).__name__}: {exc}") from None
                self._drop_client_locked()
                self._client = self._client_factory(self.store, token)
                self._client_expires = expires
            return self._client

    def _drop_client(self) -> None:
        with self._lock:
            self._drop_client_locked()

    def _drop_client_locked(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do
                self._client.close()
            self._client = None


__all__ = ["AzureMLOnlineStore", "FeatureSet", "Store", "decode", "lookup_key"]
