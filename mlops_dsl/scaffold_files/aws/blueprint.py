"""The {{name}} platform on AWS: all four templates, declared once and rendered per namespace.

Created by `mlops init`. The dataset below is the one the training code in training/ generates as
its sample (training/config.yaml); change both together when the model learns from your own data.
`make synth` renders this file to terraform/; `make plan ENV=local` plans it against the local
AWS emulator, with no account.
"""

from mlops_dsl import (
    AutoScaling,
    BlueGreen,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    Image,
    ModelServing,
    Platform,
    QualityGate,
    TrainingInfrastructure,
    Variant,
)

platform = Platform("{{name}}", cloud="aws")

data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"])

features = FeatureStore(data, groups=[
    FeatureGroup(
        "customer",
        record_id="customer_id",
        event_time="event_time",
        description="Account, contract and usage features per customer",
        features=[
            Feature("customer_id", "string"),
            Feature("event_time", "fractional"),
            Feature("tenure_months", "integral"),
            Feature("monthly_charges", "fractional"),
            Feature("total_charges", "fractional"),
            Feature("contract", "string"),
            Feature("payment_method", "string"),
            Feature("internet_service", "string"),
            Feature("support_calls", "integral"),
        ],
    ),
])

training = TrainingInfrastructure(
    data,
    features,
    # The build context training/ of this project: its content hash is the image tag.
    image=Image("training"),
    instance_type="ml.m5.xlarge",
    dataset=Dataset(
        target="churned",
        id_column="customer_id",
        numeric=["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior_citizen"],
        categorical=["contract", "payment_method", "internet_service", "paperless_billing"],
    ),
    gate=QualityGate(metric="roc_auc", threshold=0.80),
    spot=True,
    schedule="cron(0 3 ? * MON *)",
)

serving = ModelServing(
    training,
    image=Image("serving"),
    variants=[
        Variant("champion", weight=0.9, instance_type="ml.m5.large", initial_instance_count=2),
        Variant("challenger", weight=0.1, instance_type="ml.m5.large", initial_instance_count=2),
    ],
    deployment=BlueGreen(traffic="CANARY", canary_percent=10, wait_seconds=300, termination_wait_seconds=300),
    autoscaling=AutoScaling(min_capacity=2, max_capacity=6),
)

platform.add(data, features, training, serving)
