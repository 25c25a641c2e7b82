"""What the training pipeline's TrainingSet step reads from the feature store, on AWS.

Its own module because the training stack imports it while the feature stack's modules import the
training stack's naming (the ingestion image): kept apart, the imports go one way.
"""

from __future__ import annotations

from ..context import StackContext
from ..templates.training import TrainingInfrastructure
from ..terraform import interp
from .pipeline import TrainingSetInputs

OFFLINE_PREFIX = "feature-store"  # of the offline zone: the groups' offline store (features.py)


def training_set_inputs(t: TrainingInfrastructure, ctx: StackContext) -> TrainingSetInputs | None:
    """With labels: the labels' prefix, the offline store (`feature-store/` of the offline zone),
    and each group that has an offline store, as the store names it."""
    if t.labels is None or t.features is None:
        return None
    buckets = ctx.upstream_output(t.data, "bucket_names")
    names = ctx.upstream_output(t.features, "feature_group_names")
    return TrainingSetInputs(
        offline_store_uri=interp("s3://", buckets[t.features.offline_zone], f"/{OFFLINE_PREFIX}/"),
        groups=tuple(interp("", names[g.name], f":{g.record_id}:{g.event_time}")
                     for g in t.features.groups if g.offline),
        labels_uri=interp("s3://", buckets[t.labels.zone], f"/{t.labels.prefix}"),
    )
