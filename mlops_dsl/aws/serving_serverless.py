"""A serverless variant on AWS: SageMaker Serverless Inference, sized by memory, bounded by concurrency.

What Serverless Inference excludes ("Serverless Inference", feature exclusions, SageMaker Developer
Guide: VPC configuration, network isolation, data capture, Model Monitor, several production
variants, multi-model endpoints; rolling updates by "Deployment guardrails: exclusions") is refused
by ModelServing before anything renders (templates/serving.py `_check_modes`); here the model drops
what the service refuses and the variant gets `serverless_config` instead of instances:

- no `vpc_config` and no network isolation: the container runs in SageMaker's own network, reading
  its artifact with the hosting role. The platform's private subnets do not apply to it (README:
  Inference modes says when that is acceptable);
- no `kms_key_arn` on the endpoint configuration: that key encrypts the storage volume of the
  instances that host an endpoint (CreateEndpointConfig, KmsKeyId), and a serverless variant has
  none. The artifact stays encrypted at rest in S3 under the zones' key.
"""

from __future__ import annotations

from typing import Any

from ..templates.serving import Variant
from ..terraform import CheckovSkip

NETWORK_ISOLATION_SKIP = CheckovSkip(
    "CKV_AWS_370", "Serverless Inference refuses network isolation (SageMaker feature exclusions); the blueprint "
                   "opted in with Variant(serverless=...)")
VOLUME_KEY_SKIP = CheckovSkip(
    "CKV_AWS_98", "a serverless variant has no instance storage volume for kms_key_arn to encrypt")


def serverless_config(v: Variant) -> dict[str, Any]:
    """ProductionVariantServerlessConfig: MemorySizeInMB, MaxConcurrency, ProvisionedConcurrency."""
    s = v.serverless
    assert s is not None
    return {
        "memory_size_in_mb": s.memory_size_mb,
        "max_concurrency": s.max_concurrency,
        "provisioned_concurrency": s.provisioned_concurrency,
    }


__all__ = ["NETWORK_ISOLATION_SKIP", "VOLUME_KEY_SKIP", "serverless_config"]
