"""AWS naming rules, checked at synth time when the final names are known."""

from __future__ import annotations

import re

from ..context import StackContext

_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def zone_bucket(platform: str, namespace: str, zone: str, account_id: str) -> str:
    """The S3 bucket of a data zone: `<platform>-<namespace>-<zone>-<account>` (DataInfrastructure)."""
    return f"{platform}-{namespace}-{zone}-{account_id}"


def s3_bucket_problems(name: str) -> list[str]:
    """The S3 general-purpose bucket naming rules this name breaks (empty when valid)."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"is {len(name)} characters long; S3 allows 3 to 63")
    if not re.fullmatch(r"[a-z0-9.-]*", name):
        problems.append("may hold only lowercase letters, digits, hyphens and periods")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("must start and end with a letter or digit")
    if "." in name:
        problems.append("should not contain periods (they break TLS for virtual-hosted addressing)")
    if ".." in name or _IP.match(name):
        problems.append("must not look like an IP address or hold two adjacent periods")
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            problems.append(f"must not start with {prefix!r}")
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", "--table-s3"):
        if name.endswith(suffix):
            problems.append(f"must not end with {suffix!r}")
    return problems


def endpoint_name(platform: str, namespace: str, serving: str) -> str:
    """The SageMaker endpoint of a ModelServing template: `<platform>-<namespace>-<template>`. The
    serving stack renders it and `mlops smoke`/`loadtest` invoke it, offline, from this one rule."""
    return f"{platform}-{namespace}-{serving}"


SAGEMAKER_NAME_LIMIT = 63
ENDPOINT_CONFIG_PREFIX_LIMIT = 37


def sagemaker_name(ctx: StackContext, field: str, name: str, limit: int = SAGEMAKER_NAME_LIMIT) -> str:
    """The name, or a blueprint error naming the field when SageMaker would refuse its length."""
    if len(name) > limit:
        raise ctx.error(field, f"the SageMaker name {name!r} is {len(name)} characters; the limit is {limit} "
                               f"(shorten the platform, namespace or variant name)")
    return name
