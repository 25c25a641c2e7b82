"""The {{name}} platform on Azure Machine Learning: all four templates, rendered per namespace.

Created by `mlops init`. The dataset below is the one the training code in training/ generates as
its sample (training/config.yaml); change both together when the model learns from your own data.
`make synth` renders this file to terraform/.
"""

from mlops_dsl import (
    AutoScaling,
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

platform = Platform("{{name}}", cloud="azure")

# dev's range; staging and prod take their own (namespaces.yaml), so one runner network can peer with all.
data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"], vpc_cidr="10.30.0.0/16")

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
    # The build context training/ of this project, its stage with the azureml-mlflow plugin; the
    # hash of both is the environment's version.
    image=Image("training", target="azureml"),
    instance_type="ml.m5.xlarge",
    dataset=Dataset(
        target="churned",
        id_column="customer_id",
        numeric=["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior_citizen"],
        categorical=["contract", "payment_method", "internet_service", "paperless_billing"],
    ),
    gate=QualityGate(metric="roc_auc", threshold=0.80),
    spot=True,
    schedule="cron(0 2 ? * SUN *)",
)

serving = ModelServing(
    training,
    image=Image("serving"),
    variants=[
        Variant("blue", weight=0.9, instance_type="ml.m5.large", initial_instance_count=2),
        Variant("green", weight=0.1, instance_type="ml.m5.large", initial_instance_count=2),
    ],
    autoscaling=AutoScaling(min_capacity=2, max_capacity=6),
)

platform.add(data, features, training, serving)
