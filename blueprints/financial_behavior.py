"""Financial behaviour (will a client subscribe to a term deposit?) on Azure Machine Learning.

The same template vocabulary as customer_churn.py: a binary classifier trained on the bank's
client data, served from a managed online endpoint with a champion and a challenger.
"""

from mlops_dsl import (
    AutoScaling,
    BatchInference,
    DataInfrastructure,
    Dataset,
    Feature,
    FeatureGroup,
    FeatureStore,
    Image,
    Ingestion,
    ModelServing,
    Platform,
    QualityGate,
    TrainingInfrastructure,
    Variant,
)

platform = Platform("financial-behavior", cloud="azure")

# dev's range; staging and prod take their own (namespaces.yaml), so one runner network can peer with all.
data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"], vpc_cidr="10.30.0.0/16")

features = FeatureStore(data, groups=[
    FeatureGroup(
        "client",
        record_id="client_id",
        event_time="event_time",
        description="Demographics, balances and campaign contacts per client",
        features=[
            Feature("client_id", "string"),
            Feature("event_time", "fractional"),
            Feature("age", "integral"),
            Feature("job", "string"),
            Feature("marital", "string"),
            Feature("education", "string"),
            Feature("balance", "fractional"),
            Feature("housing_loan", "string"),
            Feature("campaign_contacts", "integral"),
            Feature("previous_outcome", "string"),
        ],
        # The CRM's CSV exports land under raw/clients/: ingested hourly and on arrival (Event Grid),
        # by the training image's Azure ML stage.
        ingestion=Ingestion("clients/", image=Image("training", target="azureml")),
    ),
])

training = TrainingInfrastructure(
    data,
    features,
    image=Image("training", target="azureml"),  # the stage with the azureml-mlflow plugin
    instance_type="ml.m5.xlarge",
    # The scheduled job trains on this configuration, not on the image's example (training/config.yaml).
    dataset=Dataset(
        target="subscribed",
        id_column="client_id",
        numeric=["age", "balance", "campaign_contacts"],
        categorical=["job", "marital", "education", "housing_loan", "previous_outcome"],
    ),
    gate=QualityGate(metric="roc_auc", threshold=0.78),
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

# Nightly scores of the blue version over processed/batch/input/, to experiments/batch/predictions/<job>/:
# an Azure ML command job on a schedule (README: Inference modes; batch endpoints cannot run here).
batch = BatchInference(serving, variant="blue", schedule="cron(0 4 * * ? *)",
                       input_zone="processed", input_prefix="batch/input/",
                       output_zone="experiments", output_prefix="batch/predictions/")

platform.add(data, features, training, serving, batch)
