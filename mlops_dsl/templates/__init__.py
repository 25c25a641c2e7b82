"""The cloud-agnostic template declarations. No cloud module is imported here."""

from .base import Template
from .data import DataInfrastructure

__all__ = ["DataInfrastructure", "Template"]
