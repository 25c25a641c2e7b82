"""Training code run by the training image: locally, as a SageMaker training job, or as an Azure ML job."""
