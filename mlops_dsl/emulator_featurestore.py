"""The SageMaker Feature Store runtime in the local emulator: PutRecord, GetRecord, BatchGetRecord, DeleteRecord.

moto 5.2.5 creates feature groups (the control plane, `sagemaker`) but has no
`sagemaker-featurestore-runtime`, so in the `local` namespace nothing could write or read a
record. The runtime's requests are signed with the signing name `sagemaker` (botocore's service
model: metadata.signingName), so moto's server sends them to its SageMaker app; this module adds
the runtime's REST paths (`PUT|GET|DELETE /FeatureGroup/{name}`, `POST /BatchGetRecord`) to that
app. A client reaches them at the emulator's one endpoint, the namespace's `aws.endpoint`:
`boto3.client("sagemaker-featurestore-runtime", endpoint_url=<aws.endpoint>)`.

What AWS documents (API_feature_store_*.html and the service model) and the emulator does:
- the group must exist in moto's SageMaker backend (by name or ARN): GetRecord and PutRecord
  answer ResourceNotFound (404) otherwise; BatchGetRecord lists the identifier under Errors;
- a record names only the group's features, each once, and carries the record identifier and the
  event time; each value parses as its feature's type (Integral: a 64-bit integer; Fractional: a
  number; an event time of type String is ISO-8601 `yyyy-MM-ddTHH:mm:ss[.SSS]Z`); otherwise
  ValidationError (400) naming the feature and value;
- the online store keeps the latest record per identifier by event time: a PutRecord with an
  older event time than the stored one leaves the online record as it is (AWS writes it to the
  offline store only), and a DeleteRecord removes the record unless a newer one is stored;
- GetRecord of an unknown identifier is an empty answer (no `Record`), as AWS documents;
  BatchGetRecord leaves unknown identifiers out of `Records`;
- every accepted PutRecord (and DeleteRecord, as a row with `is_deleted` true) is also appended
  to the offline store, when the group has one: a Parquet file under the group's
  `ResolvedOutputS3Uri` (moto's, from DescribeFeatureGroup), partitioned `year=/month=/day=/hour=`
  by event time, with the columns AWS adds
  (`write_time`, `api_invocation_time`, `is_deleted`). AWS buffers several records per file;
  one file per record is what a reader of the offline store sees too, only smaller.
Records live on moto's group object, so deleting (or replacing) a group deletes its records, as
on AWS. TtlDuration, TargetStores and ExpiresAt are accepted and ignored.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

ISO_EVENT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
INT64 = (-(2**63), 2**63 - 1)
_LOCK = threading.Lock()  # moto's threaded server: one writer of a group's records at a time

Answer = tuple[int, dict[str, str], str]


class ServiceError(Exception):
    """An error shape of the runtime's model: its name, HTTP status and message."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def answer(self) -> Answer:
        return self.status, {"Content-Type": "application/json", "x-amzn-ErrorType": self.code}, json.dumps(
            {"__type": self.code, "message": self.message, "Message": self.message})


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", 400, message)


def _not_found(name: str) -> ServiceError:
    return ServiceError("ResourceNotFound", 404, f"Resource Not Found: FeatureGroup {name} not found")


@dataclass
class Stored:
    """The online store's record for one identifier: its event time (as a UTC instant) and values."""

    event_time: datetime
    record: list[dict[str, str]]


def parse_event_time(value: str, feature_type: str) -> datetime:
    """An event time as AWS accepts it: Fractional seconds since the epoch, or ISO-8601 in UTC."""
    if feature_type == "Fractional":
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise _validation(f"EventTime {value!r} is not a number of seconds since the epoch") from None
    if not ISO_EVENT_TIME.fullmatch(value):
        raise _validation(f"EventTime {value!r} is not in the format yyyy-MM-dd'T'HH:mm:ssZ or "
                          f"yyyy-MM-dd'T'HH:mm:ss.SSSZ")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _validation(f"EventTime {value!r} is not a valid date and time") from None


def check_value(name: str, feature_type: str, value: str) -> None:
    """A ValidationError unless `value` parses as `feature_type` (String accepts any text)."""
    if feature_type == "Integral":
        try:
            number = int(value)
        except ValueError:
            raise _validation(f"Feature {name}: {value!r} is not an Integral value") from None
        if not INT64[0] <= number <= INT64[1]:
            raise _validation(f"Feature {name}: {value!r} is out of the Integral (64-bit) range")
    elif feature_type == "Fractional":
        try:
            float(value)
        except ValueError:
            raise _validation(f"Feature {name}: {value!r} is not a Fractional value") from None


def check_record(group: Any, record: Any) -> tuple[str, datetime]:
    """The record's identifier and event time, after checking it against the group's definitions."""
    if not isinstance(record, list) or not record:
        raise _validation("Record must be a non-empty list of FeatureValue")
    types = {d["FeatureName"]: d["FeatureType"] for d in group.feature_definitions}
    seen: dict[str, str] = {}
    for item in record:
        name = item.get("FeatureName") if isinstance(item, dict) else None
        if name not in types:
            raise _validation(f"Feature {name!r} is not a feature of FeatureGroup {group.feature_group_name} "
                              f"({', '.join(types)})")
        if name in seen:
            raise _validation(f"Feature {name} appears more than once in the Record")
        if "ValueAsStringList" in item:
            raise _validation(f"Feature {name}: ValueAsStringList needs a collection feature; {name} has none")
        value = item.get("ValueAsString")
        if not isinstance(value, str):
            raise _validation(f"Feature {name}: ValueAsString is required")
        check_value(name, types[name], value)
        seen[name] = value
    for role, feature in (("record identifier", group.record_identifier_feature_name),
                          ("event time", group.event_time_feature_name)):
        if feature not in seen:
            raise _validation(f"The Record is missing the {role} feature {feature}")
    event_time = parse_event_time(seen[group.event_time_feature_name], types[group.event_time_feature_name])
    return seen[group.record_identifier_feature_name], event_time


def _records(group: Any) -> dict[str, Stored]:
    if not hasattr(group, "online_records"):
        group.online_records = {}
    return group.online_records  # type: ignore[no-any-return]


def _group(backend: Any, name_or_arn: str) -> Any:
    """moto's group by name or ARN (names are case-insensitive in SageMaker), else ResourceNotFound."""
    for arn, group in backend.feature_groups.items():
        if name_or_arn.lower() in (arn.lower(), group.feature_group_name.lower()):
            return group
    raise _not_found(name_or_arn)


def _selected(record: list[dict[str, str]], names: list[str] | None) -> list[dict[str, str]]:
    return [item for item in record if not names or item["FeatureName"] in names]


def put_record(backend: Any, s3: Any, name: str, body: dict[str, Any]) -> None:
    group = _group(backend, name)
    record_id, event_time = check_record(group, body.get("Record"))
    with _LOCK:
        records = _records(group)
        current = records.get(record_id)
        if current is None or event_time >= current.event_time:
            records[record_id] = Stored(event_time, body["Record"])
    _append_offline(group, s3, body["Record"], event_time, deleted=False)


def get_record(backend: Any, name: str, record_id: str, names: list[str] | None) -> dict[str, Any]:
    group = _group(backend, name)
    stored = _records(group).get(record_id)
    return {} if stored is None else {"Record": _selected(stored.record, names)}


def delete_record(backend: Any, s3: Any, name: str, record_id: str, event_time: str) -> None:
    group = _group(backend, name)
    types = {d["FeatureName"]: d["FeatureType"] for d in group.feature_definitions}
    when = parse_event_time(event_time, types[group.event_time_feature_name])
    with _LOCK:
        records = _records(group)
        current = records.get(record_id)
        if current is not None and when >= current.event_time:
            del records[record_id]
    deleted = [{"FeatureName": group.record_identifier_feature_name, "ValueAsString": record_id},
               {"FeatureName": group.event_time_feature_name, "ValueAsString": event_time}]
    _append_offline(group, s3, deleted, when, deleted=True)  # AWS's soft delete: a row with is_deleted


def batch_get_record(backend: Any, body: dict[str, Any]) -> dict[str, Any]:
    identifiers = body.get("Identifiers")
    if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= 100:
        raise _validation("Identifiers must list 1 to 100 BatchGetRecordIdentifier")
    out: dict[str, Any] = {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}
    for identifier in identifiers:
        name = identifier.get("FeatureGroupName", "")
        ids = identifier.get("RecordIdentifiersValueAsString") or []
        if not 1 <= len(ids) <= 100:
            raise _validation(f"{name}: RecordIdentifiersValueAsString must list 1 to 100 identifiers")
        try:
            group = _group(backend, name)
        except ServiceError as exc:
            out["Errors"] += [{"FeatureGroupName": name, "RecordIdentifierValueAsString": i,
                               "ErrorCode": exc.code, "ErrorMessage": exc.message} for i in ids]
            continue
        records = _records(group)
        for record_id in ids:
            stored = records.get(record_id)
            if stored is not None:
                out["Records"].append({"FeatureGroupName": name, "RecordIdentifierValueAsString": record_id,
                                       "Record": _selected(stored.record, identifier.get("FeatureNames"))})
    return out


def _append_offline(group: Any, s3: Any, record: list[dict[str, str]], event_time: datetime, *,
                    deleted: bool) -> None:
    """One Parquet file of one row in the group's offline store (see the module's docstring)."""
    config = group.offline_store_config or {}
    resolved = (config.get("S3StorageConfig") or {}).get("ResolvedOutputS3Uri")
    if not resolved or s3 is None:
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {d["FeatureName"]: d["FeatureType"] for d in group.feature_definitions}
    values = {item["FeatureName"]: item["ValueAsString"] for item in record}
    arrow = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
    converters = {"Integral": int, "Fractional": float, "String": str}
    columns = {name: pa.array([converters[t](values[name]) if name in values else None], type=arrow[t])
               for name, t in types.items()}
    now = datetime.now(UTC)
    columns["write_time"] = pa.array([now], type=pa.timestamp("ms", tz="UTC"))
    columns["api_invocation_time"] = pa.array([now], type=pa.timestamp("ms", tz="UTC"))
    columns["is_deleted"] = pa.array([deleted], type=pa.bool_())
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    bucket, _, prefix = resolved.removeprefix("s3://").partition("/")
    key = (f"{prefix}/year={event_time:%Y}/month={event_time:%m}/day={event_time:%d}/hour={event_time:%H}/"
           f"{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex}.parquet")
    try:
        s3.put_object(bucket, key, buffer.getvalue())
    except Exception as exc:  # AWS accepts the record and fails the offline write later
        print(f"emulator: offline store of {group.feature_group_name}: s3://{bucket}/{key} not written ({exc})",
              file=sys.stderr)


def _handler(request: Any, full_url: str, headers: Any) -> Answer:
    """The runtime's four operations, routed by method and path as the service model's `http` says."""
    from moto.core.responses import BaseResponse
    from moto.s3.models import s3_backends
    from moto.sagemaker.models import sagemaker_backends

    response = BaseResponse(service_name="sagemaker")
    response.setup_class(request, full_url, headers)
    backend = sagemaker_backends[response.current_account][response.region]
    s3 = s3_backends[response.current_account]["global"]
    path = urlparse(full_url).path
    query = parse_qs(urlparse(full_url).query)
    ok = {"Content-Type": "application/json"}
    try:
        body = json.loads(response.body or "{}") if response.method in ("PUT", "POST") else {}
        if response.method == "POST" and path.rstrip("/") == "/BatchGetRecord":
            return 200, ok, json.dumps(batch_get_record(backend, body))
        name = unquote(path.split("/FeatureGroup/", 1)[1]) if "/FeatureGroup/" in path else ""
        record_id = (query.get("RecordIdentifierValueAsString") or [None])[0]
        if response.method == "PUT":
            put_record(backend, s3, name, body)
            return 200, ok, "{}"
        if record_id is None:
            raise _validation("RecordIdentifierValueAsString is required")
        if response.method == "GET":
            return 200, ok, json.dumps(get_record(backend, name, record_id, query.get("FeatureName")))
        if response.method == "DELETE":
            event_time = (query.get("EventTime") or [None])[0]
            if event_time is None:
                raise _validation("EventTime is required")
            delete_record(backend, s3, name, record_id, event_time)
            return 200, ok, "{}"
        raise _validation(f"{response.method} {path} is not an operation of the Feature Store runtime")
    except ServiceError as exc:
        return exc.answer()
    except (ValueError, AttributeError, TypeError) as exc:  # a body that is not the model's JSON
        return _validation(f"the request body is not valid: {exc}").answer()


def patch() -> None:
    """Add the runtime's paths to moto's SageMaker app (before the server creates the app)."""
    from moto.sagemaker import urls

    urls.url_paths["{0}/FeatureGroup/(?P<name>[^/]+)$"] = _handler
    urls.url_paths["{0}/BatchGetRecord$"] = _handler
