"""Customer churn prediction on AWS: the example platform."""

from mlops_dsl import DataInfrastructure, Platform

platform = Platform("customer-churn", cloud="aws")

data = DataInfrastructure(zones=["raw", "processed", "models", "experiments"])

platform.add(data)
