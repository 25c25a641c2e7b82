"""This team's own templates (README: Your own templates). Importing a module registers its renderers."""

from .data_arrivals import DataArrivals

__all__ = ["DataArrivals"]
