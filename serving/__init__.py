"""Inference server and drift detection run by the serving image."""
