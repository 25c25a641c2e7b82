"""Facts about SageMaker instance types that change what a request may contain."""

from __future__ import annotations

import re

# Instance families with local NVMe instance storage. SageMaker encrypts those volumes with a
# hardware key and refuses a customer key for them: "You can't request a VolumeKmsKeyId when using
# an instance type with local storage" (ResourceConfig and ProcessingClusterConfig in the SageMaker
# API reference; the endpoint configuration's KmsKeyId says the same for hosting). A "d" in the
# family's suffix marks local disks (m5d, c5d, r5d, g4dn, p3dn, p4d, p4de, m6id); the GPU and
# accelerator families below carry NVMe storage although their names have no "d".
_NVME_SUFFIX = re.compile(r"^ml\.[a-z]+\d+[a-z]*d[a-z]*\.")
_NVME_FAMILIES = ("ml.g5.", "ml.g6.", "ml.g6e.", "ml.p5.", "ml.p5e.", "ml.p5en.", "ml.trn1.", "ml.trn1n.",
                  "ml.inf2.")


def has_local_storage(instance_type: str) -> bool:
    """True for instance types whose volumes may not name a KMS key."""
    return bool(_NVME_SUFFIX.match(instance_type)) or instance_type.startswith(_NVME_FAMILIES)
