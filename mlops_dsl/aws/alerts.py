"""An alert topic: SNS on its own KMS key (AWS services cannot publish to a topic on the AWS-managed
SNS key), publishable by the named services of this account only, with the namespace's e-mails."""

from __future__ import annotations

from ..context import StackContext
from ..terraform import Resource, jsonencode
from . import iam


def alert_topic(ctx: StackContext, topic_name: str, what: str, publishers: dict[str, str]) -> Resource:
    """The topic (resources named `alarms`); `publishers` maps a statement id to a service principal."""
    aws = ctx.namespace.aws
    assert aws is not None
    this_account = {"StringEquals": {"aws:SourceAccount": aws.account_id}}
    key = Resource("aws_kms_key", "alarms", {
        "description": f"Encrypts the {ctx.platform} {what} topic in {ctx.namespace.name}",
        "enable_key_rotation": True,
        "deletion_window_in_days": 30,
        "is_enabled": True,
        "policy": jsonencode({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "AccountAdministration", "Effect": "Allow",
                 "Principal": {"AWS": iam.arn(ctx, "iam", "root", region=False)},
                 "Action": "kms:*", "Resource": "*"},
                *({"Sid": sid, "Effect": "Allow", "Principal": {"Service": service},
                   "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*", "Condition": this_account}
                  for sid, service in publishers.items()),
            ],
        }),
    })
    topic = Resource("aws_sns_topic", "alarms", {
        "name": topic_name,
        "kms_master_key_id": key.attr("arn"),
    })
    policy = Resource("aws_sns_topic_policy", "alarms", {
        "arn": topic.attr("arn"),
        "policy": jsonencode({"Version": "2012-10-17", "Statement": [
            {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service}, "Action": "sns:Publish",
             "Resource": topic.attr("arn"), "Condition": this_account}
            for sid, service in publishers.items()]}),
    })
    ctx.stack.add(key, Resource("aws_kms_alias", "alarms", {
        "name": f"alias/{topic_name}", "target_key_id": key.attr("key_id")}), topic, policy)
    for i, email in enumerate(ctx.namespace.alert_emails):
        ctx.stack.add(Resource("aws_sns_topic_subscription", f"email_{i}", {
            "topic_arn": topic.attr("arn"), "protocol": "email", "endpoint": email}))
    return topic


