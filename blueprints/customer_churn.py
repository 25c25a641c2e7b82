"""Customer churn prediction on AWS: the example platform, using all four templates."""

from mlops_dsl import (
    AutoScaling,
    BlueGreen,
    ContinuousRange,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    Image,
    IntegerRange,
    ModelServing,
    Platform,
    QualityGate,
    TrainingInfrastructure,
    Tuning,
    Variant,
)

platform = Platform("customer-churn", cloud="aws")

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
    image=Image("training"),
    instance_type="ml.m5.xlarge",
    dataset=Dataset(
        target="churned",
        id_column="customer_id",
        numeric=["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior_citizen"],
        categorical=["contract", "payment_method", "internet_service", "paperless_billing"],
        test_size=0.2,
        cv_folds=5,
    ),
    hyperparameters={"model": "hist_gradient_boosting"},
    tuning=Tuning(
        # The cross-validated score: the held-out one (validation:roc_auc) is the gate's.
        objective_metric="validation:cv_roc_auc",
        ranges=[
            IntegerRange("max_depth", 2, 8),
            IntegerRange("max_iter", 50, 400),
            ContinuousRange("learning_rate", 0.01, 0.3, scaling="Logarithmic"),
        ],
        max_jobs=20,
        max_parallel_jobs=2,
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
