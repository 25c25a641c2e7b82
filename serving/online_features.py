"""Online features at inference: a request names the record, the online store supplies its features.

A variant that declares `OnlineFeatures` (README: Online features at inference) is given the
environment variable `ONLINE_FEATURES`, JSON of the form

    {"groups": [{"name": "<feature group name>", "record_id": "customer_id",
                 "features": ["tenure_months", ...]}],
     "region": "eu-west-1", "timeout_ms": 300}

Requests to such a server carry each group's record id column and the model's other columns (the
request-time features); the server reads the named features of each id with one Feature Store
runtime `BatchGetRecord` call per 100 ids, merges them into rows in the model's column order, and
checks the result exactly as a request carrying every column (serving/formats.py). So:

* a record id the store does not hold is a 404 naming the id and the group (the client's mistake);
* no answer from the runtime within `timeout_ms` (connect or read) is a 504, as the server's own
  deadline is; any other failure of the runtime (throttled, access denied, a group that does not
  exist) is a 503, since the server cannot score until the store answers; neither is retried here
  (one attempt each: a slow store should not be hit twice per request; the client or SageMaker's
  caller retries).

On Azure (`"store": "azureml"`) the same requests read the Azure ML feature store's online store
in Redis instead (serving/online_store_azureml.py, whose keys are below); the answers and statuses
are the same.

The runtime client is boto3's, with botocore's connect and read timeouts set to `timeout_ms` and a
single attempt. Its endpoint is the regional one, which the VPC's interface endpoint for
`sagemaker.featurestore-runtime` answers through private DNS; `AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME`
(boto3's service-specific endpoint variable) points it elsewhere, e.g. at the local emulator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import formats
from .formats import Column, Rows
from .settings import SettingsError

VARIABLE = "ONLINE_FEATURES"
DEFAULT_TIMEOUT_MS = 300
BATCH_IDS = 100  # BatchGetRecord: at most 100 RecordIdentifiersValueAsString per identifier (botocore model)
ID_TYPE = "string"  # record ids are looked up as strings: ValueAsString


class StoreError(Exception):
    """The online store did not answer usably; answered with `status` (503 or 504), never the client's fault."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


STORES = ("sagemaker", "azureml")
# `"store": "azureml"` adds, beside groups (each also with `version`, `version_id` and `encoded`):
AZURE_KEYS = ("redis_host", "identity_client_id", "identity_object_id", "feature_store_guid")


@dataclass(frozen=True)
class Group:
    name: str
    record_id: str
    features: tuple[str, ...]
    version: str = ""  # azureml: the feature set version, its ARM id, and the features stored msgpack-encoded
    version_id: str = ""
    encoded: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    groups: tuple[Group, ...]
    region: str | None
    timeout_ms: int
    store: str = "sagemaker"
    azure: tuple[tuple[str, str], ...] = ()  # the AZURE_KEYS' values, and redis_port


def parse_config(raw: str) -> Config:
    """The `ONLINE_FEATURES` value; SettingsError naming the variable and the key for anything else."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"{VARIABLE}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list) or not doc["groups"]:
        raise SettingsError(f"{VARIABLE}: expected an object with 'groups', a non-empty list")
    groups = []
    for i, g in enumerate(doc["groups"]):
        ok = isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"] and \
            isinstance(g.get("record_id"), str) and g["record_id"] and isinstance(g.get("features"), list) and \
            g["features"] and all(isinstance(f, str) and f for f in g["features"])
        if not ok:
            raise SettingsError(f"{VARIABLE}: groups[{i}] needs 'name', 'record_id' (strings) and 'features' "
                                f"(a non-empty list of names); got {g!r}")
        groups.append(Group(g["name"], g["record_id"], tuple(g["features"])))
    store = doc.get("store", "sagemaker")
    if store not in STORES:
        raise SettingsError(f"{VARIABLE}: store must be one of {', '.join(STORES)}; got {store!r}")
    azure: list[tuple[str, str]] = []
    if store == "azureml":
        for key in AZURE_KEYS:
            if not isinstance(doc.get(key), str) or not doc[key]:
                raise SettingsError(f"{VARIABLE}: {key} is required (a string) with store azureml; "
                                    f"got {doc.get(key)!r}")
            azure.append((key, doc[key]))
        port = doc.get("redis_port", 6380)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise SettingsError(f"{VARIABLE}: redis_port must be a port number; got {port!r}")
        azure.append(("redis_port", str(port)))
        for i, (raw, g) in enumerate(zip(doc["groups"], groups, strict=True)):
            encoded = raw.get("encoded", [])
            ok = isinstance(raw.get("version"), str) and raw["version"] and \
                isinstance(raw.get("version_id"), str) and raw["version_id"].startswith("/subscriptions/") and \
                isinstance(encoded, list) and all(isinstance(f, str) for f in encoded)
            if not ok:
                raise SettingsError(f"{VARIABLE}: groups[{i}] needs 'version', 'version_id' (the feature set "
                                    f"version's ARM id) and 'encoded' (a list of names) with store azureml; "
                                    f"got {raw!r}")
            groups[i] = Group(g.name, g.record_id, g.features, raw["version"], raw["version_id"], tuple(encoded))
    timeout = doc.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 60000:
        raise SettingsError(f"{VARIABLE}: timeout_ms must be an integer from 1 to 60000; got {timeout!r}")
    region = doc.get("region")
    if region is not None and not isinstance(region, str):
        raise SettingsError(f"{VARIABLE}: region must be a string; got {region!r}")
    return Config(tuple(groups), region, timeout, store, tuple(azure))


Fetch = Callable[[list[dict[str, Any]]], dict[str, Any]]


def runtime_client(config: Config) -> Fetch:
    """boto3's BatchGetRecord with bounded timeouts and a single attempt (no retry storm on a slow store);
    on Azure the online store's reader, which answers in BatchGetRecord's shape."""
    if config.store == "azureml":
        return azureml_reader(config)
    import boto3
    from botocore.config import Config as BotoConfig

    seconds = config.timeout_ms / 1000
    client = boto3.client("sagemaker-featurestore-runtime", region_name=config.region, config=BotoConfig(
        connect_timeout=seconds, read_timeout=seconds, retries={"total_max_attempts": 1, "mode": "standard"}))
    return lambda identifiers: client.batch_get_record(Identifiers=identifiers)


def azureml_reader(config: Config) -> Fetch:
    from .online_store_azureml import AzureMLOnlineStore, FeatureSet, Store

    azure = dict(config.azure)
    return AzureMLOnlineStore(Store(
        host=azure["redis_host"], port=int(azure["redis_port"]), client_id=azure["identity_client_id"],
        object_id=azure["identity_object_id"], feature_store_guid=azure["feature_store_guid"],
        feature_sets={g.name: FeatureSet(g.name, g.version, g.version_id, g.record_id, frozenset(g.encoded))
                      for g in config.groups},
        timeout_ms=config.timeout_ms))


class OnlineFeatures:
    """Turns a request that names records into the model's full rows, reading the rest from the store."""

    def __init__(self, config: Config, fetch: Fetch | None = None):
        self.config = config
        self._fetch = fetch
        self._plans: dict[int, tuple[list[Column], list[Column], list[tuple[int, int, str]]]] = {}

    @property
    def fetch(self) -> Fetch:
        if self._fetch is None:  # built on first use: importing boto3 costs a second at start-up
            self._fetch = runtime_client(self.config)
        return self._fetch

    def plan(self, columns: list[Column]) -> tuple[list[Column], list[tuple[int, int, str]]]:
        """The request's columns (record ids, then the model's columns no group supplies) and, for each
        model column, where its value comes from: (0, request position) or (1, group index, feature)."""
        cached = self._plans.get(id(columns))
        if cached is not None and cached[0] is columns:
            return cached[1], cached[2]
        model = {c.name for c in columns}
        stored: dict[str, int] = {}
        for g_index, group in enumerate(self.config.groups):
            if group.record_id in model:
                raise SettingsError(f"{VARIABLE}: record_id {group.record_id!r} of group {group.name!r} is a model "
                                    f"input; the record id is looked up, not scored")
            for name in group.features:
                if name in model:
                    stored.setdefault(name, g_index)
        ids = list(dict.fromkeys(g.record_id for g in self.config.groups))
        request = [Column(name, ID_TYPE) for name in ids] + [c for c in columns if c.name not in stored]
        position = {c.name: i for i, c in enumerate(request)}
        sources = [(1, stored[c.name], c.name) if c.name in stored else (0, position[c.name], "") for c in columns]
        self._plans[id(columns)] = (columns, request, sources)
        return request, sources

    def read(self, body: bytes, content_type: str, columns: list[Column]) -> Rows:
        """Checked rows in the model's column order; ClientError (4xx) or StoreError (5xx) otherwise.

        Blocking (the runtime call): run it off the event loop."""
        request, sources = self.plan(columns)
        rows = formats.parse(body, content_type, request)
        position = {c.name: i for i, c in enumerate(request)}
        wanted: list[dict[str, None]] = [{} for _ in self.config.groups]
        for r, row in enumerate(rows, 1):
            for g_index, group in enumerate(self.config.groups):
                value = row[position[group.record_id]]
                if not isinstance(value, str):  # NaN: an empty or null id
                    raise formats.ClientError(400, f"column {group.record_id!r}, row {r}: a record id is required")
                wanted[g_index][value] = None
        records = self.records([list(w) for w in wanted], columns)
        full = []
        for row in rows:
            values = []
            for kind, where, feature in sources:
                if kind == 0:
                    values.append(row[where])
                else:
                    values.append(records[where][row[position[self.config.groups[where].record_id]]].get(feature))
            full.append(values)
        return formats.to_rows(full, columns)

    def records(self, ids: list[list[str]], columns: list[Column]) -> list[dict[str, dict[str, str | None]]]:
        """Per group, each id's feature values (strings, None for a feature the record lacks)."""
        model = {c.name for c in columns}
        found: list[dict[str, dict[str, str | None]]] = [{} for _ in self.config.groups]
        index = {g.name: i for i, g in enumerate(self.config.groups)}
        for start in range(0, max(len(i) for i in ids), BATCH_IDS):
            identifiers = []
            for group, group_ids in zip(self.config.groups, ids, strict=True):
                chunk = group_ids[start:start + BATCH_IDS]
                names = [f for f in group.features if f in model]
                if chunk and names:
                    identifiers.append({"FeatureGroupName": group.name, "RecordIdentifiersValueAsString": chunk,
                                        "FeatureNames": names})
            if identifiers:
                answer = self._call(identifiers)
                for record in answer.get("Records", []):
                    g_index = index.get(_group_name(record.get("FeatureGroupName", "")))
                    if g_index is not None:
                        found[g_index][record["RecordIdentifierValueAsString"]] = {
                            v["FeatureName"]: v.get("ValueAsString") for v in record.get("Record", [])}
                _refuse_errors(answer)
        for group, group_ids, have in zip(self.config.groups, ids, found, strict=True):
            if not any(f in model for f in group.features):
                for record_id in group_ids:
                    have[record_id] = {}  # nothing of this group is a model input: nothing to look up
                continue
            missing = [i for i in group_ids if i not in have]
            if missing:
                shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more"
                                                                  if len(missing) > 5 else "")
                raise formats.ClientError(404, f"no record {shown} ({group.record_id}) in the online store of "
                                               f"feature group {group.name!r}", "RESOURCE_DOES_NOT_EXIST")
        return found

    def _call(self, identifiers: list[dict[str, Any]]) -> dict[str, Any]:
        if self.config.store == "azureml":
            return self.fetch(identifiers)  # its reader answers StoreError itself (online_store_azureml.py)
        from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

        try:
            return self.fetch(identifiers)
        except (ConnectTimeoutError, ReadTimeoutError):
            raise StoreError(504, f"the feature store did not answer within {self.config.timeout_ms} ms "
                                  f"({VARIABLE} timeout_ms)") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StoreError(503, f"the feature store refused BatchGetRecord: {error.get('Code', '?')}: "
                                  f"{error.get('Message', '')}") from None
        except BotoCoreError as exc:
            raise StoreError(503, f"the feature store cannot be reached: {exc}") from None


def _group_name(name_or_arn: str) -> str:
    """The group's name, from the name or the ARN the answer carries."""
    return name_or_arn.rpartition("feature-group/")[2] or name_or_arn


def _refuse_errors(answer: dict[str, Any]) -> None:
    """Per-record errors and unprocessed ids are the store's failure (503), not a missing record."""
    errors = answer.get("Errors") or []
    if errors:
        e = errors[0]
        raise StoreError(503, f"the feature store failed to read record {e.get('RecordIdentifierValueAsString')!r} "
                              f"of {e.get('FeatureGroupName')!r}: {e.get('ErrorCode')}: {e.get('ErrorMessage')}")
    if answer.get("UnprocessedIdentifiers"):
        raise StoreError(503, "the feature store left records unprocessed (throttled); retry the request")


def load(environ: dict[str, str] | None = None) -> OnlineFeatures | None:
    """The server's online features from its environment; None when the variant reads none."""
    raw = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    return OnlineFeatures(parse_config(raw)) if raw else None


__all__ = ["OnlineFeatures", "StoreError", "load", "parse_config"]
