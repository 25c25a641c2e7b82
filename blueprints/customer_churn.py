"""Customer churn prediction on AWS: the example platform, using all four templates."""

from team_templates import DataArrivals  # blueprints/team_templates/: this team's own template

from mlops_dsl import (
    Api,
    AutoScaling,
    BatchInference,
    Block,
    BlueGreen,
    ContinuousRange,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    Image,
    Ingestion,
    IntegerRange,
    Labels,
    ModelServing,
    MultiModel,
    Namespace,
    OnlineFeatures,
    Platform,
    QualityGate,
    Resource,
    Serverless,
    Stack,
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
        # CSV exports of the billing system land under raw/customers/: ingested hourly and on arrival.
        ingestion=Ingestion("customers/"),
    ),
    FeatureGroup(
        "account",
        record_id="customer_id",
        event_time="event_time",
        description="Account holder attributes per customer",
        features=[
            Feature("customer_id", "string"),
            Feature("event_time", "fractional"),
            Feature("senior_citizen", "integral"),
            Feature("paperless_billing", "string"),
        ],
        ingestion=Ingestion("accounts/"),
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
    # Churn labels (customer_id, labelled_at, churned) arrive under raw/labels/churn/; the pipeline
    # joins each with the features as of labelled_at.
    labels=Labels("labels/churn/", record_id="customer_id", event_time="labelled_at", label="churned"),
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
    # Applications call POST /v1/invocations, SigV4-signed, from the platform's VPC (README: An inference API).
    api=Api(rate_limit=100, burst_limit=200),
)

# Inference modes (README: Inference modes), each serving the versions pinned for the variants above.
# Nightly scores of the champion's version over processed/batch/input/, to experiments/batch/predictions/.
batch = BatchInference(serving, variant="champion", schedule="cron(0 4 * * ? *)",
                       input_zone="processed", input_prefix="batch/input/",
                       output_zone="experiments", output_prefix="batch/predictions/")
# The champion's version for sporadic internal callers, billed per request: no capture, no drift job.
serverless = ModelServing(
    training,
    name="serverless",
    variants=[Variant("champion", serverless=Serverless(memory_size_mb=2048, max_concurrency=5))],
    deployment=None,
    autoscaling=None,
    data_capture_percent=0,
    monitoring_schedule=None,
)
# Champion and challenger on one instance, invoked by TargetModel (output target_models), e.g. to
# replay traffic against both. Fixed capacity and no drift job (it compares one package's baseline).
fleet = ModelServing(
    training,
    name="fleet",
    variants=[Variant("fleet", multi_model=MultiModel(models=["champion", "challenger"], max_loaded=2))],
    autoscaling=None,
    monitoring_schedule=None,
)
# Requests that name only the customer (`{"customer_id": "C000042"}`): the champion's version, its
# features read per request from the feature store's online store (README: Online features at inference).
lookup = ModelServing(
    training,
    name="lookup",
    features=features,
    variants=[Variant(name, weight=weight, instance_type="ml.m5.large", initial_instance_count=1,
                      online_features=OnlineFeatures(groups=["customer", "account"]))
              for name, weight in (("champion", 0.9), ("challenger", 0.1))],
    autoscaling=None,
    monitoring_schedule=None,
)

# Escape hatches (README: Escape hatches): one generated value changed, and one resource added.
data.override("aws_s3_bucket.raw", "tags.data-classification", "confidential")


def count_tracebacks(stack: Stack, namespace: Namespace) -> None:
    """A metric of the model server's Python tracebacks, for dashboards and alarms of the team's own."""
    logs = next((r for r in stack.resources if r.address == "aws_cloudwatch_log_group.endpoint"), None)
    if logs is None:  # no version pinned in this namespace: no endpoint, no log group
        return
    stack.add(Resource("aws_cloudwatch_log_metric_filter", "tracebacks", {
        "name": f"{logs.body['name']}-tracebacks",
        "log_group_name": logs.attr("name"),
        "pattern": '"Traceback (most recent call last)"',
        "metric_transformation": Block({"name": "Tracebacks", "namespace": f"mlops/{namespace.name}", "value": "1"}),
    }))


serving.extend(count_tracebacks)

# A template of this team's own, reading the data stack's outputs (README: Your own templates).
arrivals = DataArrivals(data, zone="raw", prefix="incoming/")

platform.add(data, features, training, serving, batch, serverless, fleet, lookup, arrivals)
