"""The emulator's Feature Store runtime (mlops_dsl/emulator_featurestore.py), through boto3."""

from __future__ import annotations

import io
from typing import Any

import pytest

GROUP = "fs-runtime-test"
BUCKET = "fs-runtime-offline"


def _values(record: list[dict[str, str]]) -> dict[str, str]:
    return {item["FeatureName"]: item["ValueAsString"] for item in record}


def _record(**values: str) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


@pytest.fixture(scope="module")
def clients(aws_emulator: dict[str, str]) -> dict[str, Any]:
    import boto3

    out = {s: boto3.client(s, region_name=aws_emulator["region"], endpoint_url=aws_emulator["endpoint"])
           for s in ("s3", "sagemaker", "sagemaker-featurestore-runtime")}
    out["s3"].create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws_emulator["region"]})
    out["sagemaker"].create_feature_group(
        FeatureGroupName=GROUP, RecordIdentifierFeatureName="id", EventTimeFeatureName="t",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "t", "FeatureType": "String"},
                            {"FeatureName": "n", "FeatureType": "Integral"},
                            {"FeatureName": "x", "FeatureType": "Fractional"}],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/feature-store"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store")
    return out


def test_put_then_get_keeps_the_latest_record_by_event_time(clients: dict[str, Any]) -> None:
    fs = clients["sagemaker-featurestore-runtime"]
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="a", t="2026-01-02T00:00:00Z", n="2", x="0.5"))
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="a", t="2026-01-01T00:00:00Z", n="1", x="0.1"))  # older
    got = fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="a")
    assert _values(got["Record"]) == {"id": "a", "t": "2026-01-02T00:00:00Z", "n": "2", "x": "0.5"}
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="a", t="2026-01-03T00:00:00.250Z", n="3"))
    got = fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="a", FeatureNames=["n"])
    assert got["Record"] == [{"FeatureName": "n", "ValueAsString": "3"}]  # a full overwrite, then selected
    assert "Record" not in fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="unknown")


def test_every_put_lands_in_the_offline_store_as_parquet(clients: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    fs, s3 = clients["sagemaker-featurestore-runtime"], clients["s3"]
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="off", t="2025-07-04T09:30:00Z", n="7", x="1.5"))
    resolved = clients["sagemaker"].describe_feature_group(FeatureGroupName=GROUP)[
        "OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    prefix = resolved.removeprefix(f"s3://{BUCKET}/") + "/year=2025/month=07/day=04/hour=09/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith(".parquet")
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())).to_pylist()
    assert table[0]["id"] == "off" and table[0]["n"] == 7 and table[0]["x"] == 1.5
    assert table[0]["is_deleted"] is False and table[0]["write_time"] is not None


def test_batch_get_answers_known_ids_and_names_missing_groups(clients: dict[str, Any]) -> None:
    fs = clients["sagemaker-featurestore-runtime"]
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="b1", t="2026-01-01T00:00:00Z", n="10"))
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="b2", t="2026-01-01T00:00:00Z", n="20"))
    got = fs.batch_get_record(Identifiers=[
        {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["b1", "b2", "nobody"], "FeatureNames": ["n"]},
        {"FeatureGroupName": "no-such-group", "RecordIdentifiersValueAsString": ["b1"]}])
    assert {r["RecordIdentifierValueAsString"]: r["Record"] for r in got["Records"]} == {
        "b1": [{"FeatureName": "n", "ValueAsString": "10"}], "b2": [{"FeatureName": "n", "ValueAsString": "20"}]}
    assert [(e["FeatureGroupName"], e["ErrorCode"]) for e in got["Errors"]] == [("no-such-group", "ResourceNotFound")]
    assert got["UnprocessedIdentifiers"] == []


@pytest.mark.parametrize(("record", "message"), [
    (_record(id="v", n="1"), "missing the event time feature t"),
    (_record(t="2026-01-01T00:00:00Z"), "missing the record identifier feature id"),
    (_record(id="v", t="2026-01-01T00:00:00Z", n="1.5"), "Feature n: '1.5' is not an Integral value"),
    (_record(id="v", t="2026-01-01T00:00:00Z", x="high"), "Feature x: 'high' is not a Fractional value"),
    (_record(id="v", t="2026-01-01 00:00:00"), "EventTime '2026-01-01 00:00:00' is not in the format"),
    (_record(id="v", t="2026-01-01T00:00:00Z", extra="1"), "Feature 'extra' is not a feature of"),
])
def test_put_refuses_records_the_group_does_not_define(clients: dict[str, Any], record: list, message: str) -> None:
    fs = clients["sagemaker-featurestore-runtime"]
    with pytest.raises(fs.exceptions.ValidationError, match=message):
        fs.put_record(FeatureGroupName=GROUP, Record=record)
    assert "Record" not in fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="v")


def test_unknown_group_is_resource_not_found(clients: dict[str, Any]) -> None:
    fs = clients["sagemaker-featurestore-runtime"]
    with pytest.raises(fs.exceptions.ResourceNotFound, match="no-such-group"):
        fs.get_record(FeatureGroupName="no-such-group", RecordIdentifierValueAsString="a")
    with pytest.raises(fs.exceptions.ResourceNotFound):
        fs.put_record(FeatureGroupName="no-such-group", Record=_record(id="a", t="2026-01-01T00:00:00Z"))


def test_delete_removes_the_record_unless_a_newer_one_is_stored(clients: dict[str, Any]) -> None:
    fs = clients["sagemaker-featurestore-runtime"]
    fs.put_record(FeatureGroupName=GROUP, Record=_record(id="d", t="2026-01-05T00:00:00Z", n="1"))
    fs.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="d", EventTime="2026-01-04T00:00:00Z")
    assert "Record" in fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="d")
    fs.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="d", EventTime="2026-01-06T00:00:00Z")
    assert "Record" not in fs.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="d")


def test_state_machine_versions_are_listed(aws_emulator: dict[str, str]) -> None:
    """emulator_stepfunctions.py: the AWS provider reads them after creating a state machine."""
    import json

    import boto3

    sfn = boto3.client("stepfunctions", region_name=aws_emulator["region"], endpoint_url=aws_emulator["endpoint"])
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    role = "arn:aws:iam::123456789012:role/sfn"
    unversioned = sfn.create_state_machine(name="fs-runtime-unversioned", definition=definition, roleArn=role)
    assert sfn.list_state_machine_versions(stateMachineArn=unversioned["stateMachineArn"])[
        "stateMachineVersions"] == []
    arn = sfn.create_state_machine(name="fs-runtime-versions", definition=definition, roleArn=role,
                                   publish=True)["stateMachineArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=definition, publish=True)
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [f"{arn}:2", f"{arn}:1"]
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.list_state_machine_versions(stateMachineArn=arn + "-gone")
