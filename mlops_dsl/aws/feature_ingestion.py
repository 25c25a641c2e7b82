"""The ingestion of raw data into each feature group that declares `Ingestion`, on AWS.

Per group: its spec (`ingestion/<group>.json` in the offline zone: the group, its features and
their source columns, where to read, quarantine and record), a Step Functions state machine that
runs `python -m training ingest --spec <that object>` as a SageMaker Processing job on the
ingestion image (`createProcessingJob.sync`), and what starts it: an EventBridge rule on the raw
bucket's "Object Created" events under the group's prefix (the data buckets send their events to
EventBridge, data.py) and an EventBridge Scheduler schedule (schedules.py). The machine first asks
SageMaker whether one of its jobs is in progress and then ends at once: a burst of uploads starts
one job, not one per object; what that job listed too early is picked up by the next event or the
schedule, since every run lists the prefix against the ledger. For the same reason a lost event
(the rule retries for an hour) costs at most one schedule interval, so the rule needs no
dead-letter queue of its own. Each run sends its counts to CloudWatch (`MLOps/Ingestion`:
RecordsWritten, QuarantinedRows, FailedObjects by FeatureGroup); an alarm per group on quarantined
rows and one on failed executions notify the features topic.

Roles, each for one thing: the job's (list and read the group's prefix, write its quarantine and
ledger, read its spec, PutRecord into its group and no other; the platform's key; not
network-isolated: it calls S3 and the Feature Store runtime through the VPC's gateway and
interface endpoints, the private subnets have no other way out), the state machine's (start,
watch and stop jobs named for this group, pass the job's role), the rule's (start the machine).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..context import StackContext
from ..templates.features import FeatureGroup, FeatureStore, Ingestion
from ..terraform import Block, Expr, Output, Resource, Value, interp, jsonencode
from . import iam
from .alerts import alert_topic
from .instances import has_local_storage
from .repositories import repository_name
from .schedules import Schedule, render_schedule
from .serving_drift import SYNC_RULE
from .serving_workflows import PROCESSING_SYNC, RETRY
from .state_machines import failed_executions_alarm, observability_statements, state_machine
from .training import image_uri, registry
from .training_role import network_statements

LIST_PROCESSING_JOBS = "arn:aws:states:::aws-sdk:sagemaker:listProcessingJobs"
METRICS_NAMESPACE = "MLOps/Ingestion"  # the job's counts per FeatureGroup (training/ingest_job.py metrics)
SPEC_PREFIX = "ingestion"
LEDGER_PREFIX = "ingestion-ledger"
QUARANTINE_PREFIX = "quarantine"
# ProcessingJobName: 1 to 63 characters; the execution adds "-" and an MD5 (32 hex digits).
JOB_PREFIX_LIMIT = 63 - 33


def job_prefix(ctx: StackContext, group: FeatureGroup) -> str:
    """`ing-<group>-<8 hex digits of platform, namespace and group>`: within the limit, unique per
    platform and namespace (job names are per account and region), and readable."""
    digest = hashlib.blake2b(f"{ctx.name}/{group.name}".encode(), digest_size=4).hexdigest()
    return f"ing-{group.name[:JOB_PREFIX_LIMIT - 13]}-{digest}"


def spec_document(t: FeatureStore, g: FeatureGroup, group_name: Value, buckets: Expr) -> dict[str, Any]:
    """What `python -m training ingest` reads (training/ingest.py IngestionSpec)."""
    assert g.ingestion is not None
    return {
        "feature_group": group_name,
        "record_id": g.record_id,
        "event_time": g.event_time,
        "features": [{"name": f.name, "type": f.type, "column": f.column} for f in g.features],
        "raw_bucket": buckets[t.raw_zone],
        "prefix": g.ingestion.prefix,
        "format": g.ingestion.format,
        "quarantine_prefix": f"{QUARANTINE_PREFIX}/{g.name}/",
        "ledger_bucket": buckets[t.offline_zone],
        "ledger_prefix": f"{LEDGER_PREFIX}/{g.name}/",
        "concurrency": g.ingestion.concurrency,
    }


def processing_request(ctx: StackContext, g: FeatureGroup, ing: Ingestion, image: Value, role: Value,
                       spec_uri: Value, key_arn: Expr, subnets: Expr, security_group: Expr) -> dict[str, Any]:
    """The CreateProcessingJob request (botocore's CreateProcessingJobRequest)."""
    region = ctx.namespace.aws.region  # type: ignore[union-attr]
    cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": ing.instance_type, "VolumeSizeInGB": 30}
    if not has_local_storage(ing.instance_type):
        cluster["VolumeKmsKeyId"] = key_arn
    return {
        "ProcessingJobName.$": f"States.Format('{job_prefix(ctx, g)}-{{}}', States.Hash($$.Execution.Id, 'MD5'))",
        "RoleArn": role,
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["python", "-m", "training", "ingest", "--spec", spec_uri, "--region", region,
                                    "--metrics-namespace", METRICS_NAMESPACE],
        },
        "ProcessingResources": {"ClusterConfig": cluster},
        "NetworkConfig": {
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": True,
            "VpcConfig": {"Subnets": subnets, "SecurityGroupIds": [security_group]},
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Environment": {"AWS_DEFAULT_REGION": region},
    }


def ingestion_definition(ctx: StackContext, g: FeatureGroup, request: dict[str, Any]) -> dict[str, Any]:
    """One job at a time: end when one of this group's jobs is in progress, else run one and wait."""
    return {
        "Comment": f"Ingest new raw objects into feature group {g.name} (python -m training ingest)",
        "StartAt": "Running jobs",
        "States": {
            "Running jobs": {
                "Type": "Task", "Resource": LIST_PROCESSING_JOBS,
                "Parameters": {"NameContains": job_prefix(ctx, g), "StatusEquals": "InProgress", "MaxResults": 1},
                # A count, not the list: a Choice on a path into an empty list is an error in moto's
                # interpreter (and the summaries' timestamps need not travel on).
                "ResultSelector": {"Count.$": "States.ArrayLength($.ProcessingJobSummaries)"},
                "ResultPath": "$.running", "Retry": RETRY, "Next": "One running?",
            },
            "One running?": {"Type": "Choice", "Choices": [{"Variable": "$.running.Count", "NumericGreaterThan": 0,
                                                             "Next": "Already ingesting"}],
                             "Default": "Ingest"},
            "Already ingesting": {"Type": "Succeed", "Comment": "the running job, the next event or the schedule "
                                                                "ingests what is new"},
            "Ingest": {"Type": "Task", "Resource": PROCESSING_SYNC, "Parameters": request, "End": True},
        },
    }


def _job_statements(t: FeatureStore, ctx: StackContext, g: FeatureGroup, group_arn: Expr, bucket_arns: Expr,
                    key_arn: Expr, security_group: Expr) -> list[dict[str, Any]]:
    assert g.ingestion is not None
    raw, offline = bucket_arns[t.raw_zone], bucket_arns[t.offline_zone]
    prefix, ledger = g.ingestion.prefix, f"{LEDGER_PREFIX}/{g.name}/"
    return [
        iam.statement("ListRawPrefix", ["s3:ListBucket"], [raw], {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}),
        iam.statement("ReadRawObjects", ["s3:GetObject"], [interp("", raw, f"/{prefix}*")]),
        iam.statement("WriteQuarantine", ["s3:PutObject"], [interp("", raw, f"/{QUARANTINE_PREFIX}/{g.name}/*")]),
        iam.statement("ListLedger", ["s3:ListBucket"], [offline],
                      {"StringLike": {"s3:prefix": [ledger, f"{ledger}*"]}}),
        iam.statement("WriteLedger", ["s3:PutObject"], [interp("", offline, f"/{ledger}*")]),
        iam.statement("ReadSpec", ["s3:GetObject"], [interp("", offline, f"/{SPEC_PREFIX}/{g.name}.json")]),
        iam.statement("PutRecords", ["sagemaker:PutRecord"], [group_arn]),
        # PutMetricData acts on no resource IAM can name; the condition keeps it to this namespace.
        iam.statement("IngestionMetrics", ["cloudwatch:PutMetricData"], "*",
                      {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}),
        # The zones' objects and the online store are under the platform's key: PutRecord's caller
        # needs kms:Decrypt on the online store's key (OnlineStoreSecurityConfig, SageMaker API
        # reference); the grant is how SageMaker uses the key on the job's volume.
        iam.statement("PlatformKey", ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                      [key_arn]),
        iam.statement("JobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                  "logs:DescribeLogStreams"],
                      [iam.arn(ctx, "logs", "log-group:/aws/sagemaker/ProcessingJobs"),
                       iam.arn(ctx, "logs", "log-group:/aws/sagemaker/ProcessingJobs:*")]),
        iam.statement("PullIngestionImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                                             "ecr:BatchCheckLayerAvailability"],
                      [iam.arn(ctx, "ecr", "repository/" + repository_name(ctx.platform, ctx.namespace.name,
                                                                           g.ingestion.image.repository))]),
        # GetAuthorizationToken acts on the registry, which has no ARN to scope it to.
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        *network_statements(ctx, security_group),
    ]


def render_ingestion(t: FeatureStore, ctx: StackContext, groups: dict[str, Resource], key_arn: Expr) -> None:
    """Everything above, for each group with `ingestion`; nothing when none has."""
    ingested = [g for g in t.groups if g.ingestion is not None]
    if not ingested:
        return
    aws = ctx.namespace.aws
    assert aws is not None
    data = t.data
    buckets = ctx.upstream_output(data, "bucket_names")
    bucket_arns = ctx.upstream_output(data, "bucket_arns")
    subnets = ctx.upstream_output(data, "private_subnet_ids")
    security_group = ctx.upstream_output(data, "sagemaker_security_group_id")
    topic = alert_topic(ctx, f"{ctx.name}-features-alerts", "feature ingestion alert", {
        "CloudWatchAlarmsOfThisAccount": "cloudwatch.amazonaws.com"})
    logs = Resource("aws_cloudwatch_log_group", "ingestion_state_machines", {
        "name": f"/aws/vendedlogs/states/{ctx.name}-features",
        "retention_in_days": data.log_retention_days,
        "kms_key_id": key_arn,
    })
    ctx.stack.add(logs)
    specs, machines = {}, {}
    for g in ingested:
        assert g.ingestion is not None
        address, purpose = g.name.replace("-", "_"), f"ingest-{g.name}"
        # The repository TrainingInfrastructure creates (repositories.py names it); the features stack
        # deploys first, so it names the image rather than reading the training stack's outputs.
        repository = f"{registry(aws.account_id, aws.region)}/" + repository_name(
            ctx.platform, ctx.namespace.name, g.ingestion.image.repository)
        image = image_uri(repository, ctx.image_tag(g.ingestion.image))
        spec = Resource("aws_s3_object", f"ingestion_spec_{address}", {
            "bucket": buckets[t.offline_zone],
            "key": f"{SPEC_PREFIX}/{g.name}.json",
            "content": jsonencode(spec_document(t, g, groups[g.name].attr("feature_group_name"), buckets)),
            "content_type": "application/json",
            "server_side_encryption": "aws:kms",
            "kms_key_id": key_arn,
        })
        spec_uri = interp("s3://", spec.attr("bucket"), "/", spec.attr("key"))
        role = iam.role(ctx, f"ingestion_{address}", purpose, "sagemaker.amazonaws.com")
        ctx.stack.add(spec, role, iam.inline_policy(f"ingestion_{address}", role, _job_statements(
            t, ctx, g, groups[g.name].attr("arn"), bucket_arns, key_arn, security_group)))

        workflow = iam.role(ctx, f"ingestion_workflow_{address}", f"{purpose}-flow",
                            "states.amazonaws.com")
        workflow_policy = iam.inline_policy(f"ingestion_workflow_{address}", workflow, [
            iam.statement("RunIngestionJobs", ["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                                               "sagemaker:StopProcessingJob", "sagemaker:AddTags",
                                               "sagemaker:ListTags"],
                          [iam.arn(ctx, "sagemaker", f"processing-job/{job_prefix(ctx, g)}*")]),
            # ListProcessingJobs acts on no resource IAM can name (Service Authorization Reference).
            iam.statement("SeeRunningJobs", ["sagemaker:ListProcessingJobs"], "*"),
            iam.statement("PassIngestionJobRole", ["iam:PassRole"], [role.attr("arn")],
                          {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
            iam.statement("WatchJobsForSync", ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                          [iam.arn(ctx, "events", f"rule/{SYNC_RULE}")]),
            *observability_statements(),
        ])
        ctx.stack.add(workflow, workflow_policy)
        request = processing_request(ctx, g, g.ingestion, image, role.attr("arn"), spec_uri, key_arn, subnets,
                                     security_group)
        machine = state_machine(ctx, f"ingestion_{address}", f"{ctx.name}-ingest-{g.name}",
                                ingestion_definition(ctx, g, request), workflow, workflow_policy, logs)
        failed_executions_alarm(ctx, machine, f"the ingestion of {g.name}", topic)
        _quarantine_alarm(ctx, g, groups[g.name], topic)
        if g.ingestion.on_new_data:
            _render_rule(ctx, g, buckets[t.raw_zone], machine)
        if g.ingestion.schedule is not None:
            render_schedule(ctx, Schedule(
                prefix=f"ingestion_{address}_", title=f"ingest-{g.name}", role=f"ingestion_scheduler_{address}",
                role_name=f"{purpose}-sched",
                description=f"Ingests new raw objects into {g.name} of {ctx.platform} in {ctx.namespace.name}",
                expression=g.ingestion.schedule, target_arn=machine.attr("arn"),
                start=iam.statement("StartIngestion", ["states:StartExecution"], [machine.attr("arn")]),
                what=f"the ingestion of {g.name}", target_input="{}"), key_arn, topic)
        specs[g.name] = spec_uri
        machines[g.name] = machine.attr("arn")
    ctx.stack.add(
        Output("ingestion_specs", specs, description="s3:// URI of each ingested group's spec: python -m training "
                                                     "ingest --spec <it> runs the ingestion anywhere"),
        Output("ingestion_state_machines", machines, description="State machine that ingests each group"),
    )


def _render_rule(ctx: StackContext, g: FeatureGroup, raw_bucket: Expr, machine: Resource) -> None:
    """S3's "Object Created" event under the group's prefix (S3 event notifications to EventBridge)."""
    assert g.ingestion is not None
    address = g.name.replace("-", "_")
    rule = Resource("aws_cloudwatch_event_rule", f"ingestion_{address}", {
        "name": f"{ctx.name}-ingest-{g.name}",
        "description": f"New raw data for feature group {g.name}: starts its ingestion",
        "event_pattern": jsonencode({
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [raw_bucket]}, "object": {"key": [{"prefix": g.ingestion.prefix}]}},
        }),
    })
    starter = iam.role(ctx, f"ingestion_events_{address}", f"ingest-{g.name}-events",
                       "events.amazonaws.com")
    ctx.stack.add(rule, starter, iam.inline_policy(f"ingestion_events_{address}", starter, [
        iam.statement("StartIngestion", ["states:StartExecution"], [machine.attr("arn")])]))
    ctx.stack.add(Resource("aws_cloudwatch_event_target", f"ingestion_{address}", {
        "rule": rule.attr("name"),
        "arn": machine.attr("arn"),
        "role_arn": starter.attr("arn"),
        "retry_policy": Block({"maximum_retry_attempts": 10, "maximum_event_age_in_seconds": 3600}),
    }))


def _quarantine_alarm(ctx: StackContext, g: FeatureGroup, group: Resource, topic: Resource) -> None:
    """Rows quarantined by a run: someone should read why (the rows and reasons are in the quarantine)."""
    ctx.stack.add(Resource("aws_cloudwatch_metric_alarm", f"ingestion_{g.name.replace('-', '_')}_quarantined", {
        "alarm_name": f"{ctx.name}-ingest-{g.name}-quarantined",
        "alarm_description": f"The ingestion of {g.name} quarantined rows: see quarantine/{g.name}/ in the raw zone "
                             f"(each row with its reason)",
        "namespace": METRICS_NAMESPACE,
        "metric_name": "QuarantinedRows",
        "dimensions": {"FeatureGroup": group.attr("feature_group_name")},
        "statistic": "Sum",
        "period": 3600,
        "evaluation_periods": 1,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 0,
        "treat_missing_data": "notBreaching",
        "alarm_actions": [topic.attr("arn")],
        "ok_actions": [topic.attr("arn")],
        "actions_enabled": True,
    }))
