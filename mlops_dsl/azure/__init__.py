"""How each template becomes resources on Azure (hashicorp/azurerm >= 4.55, < 5.0).

Templates are rendered here by the Azure issue; until then only the terraform block, provider
and azurerm state backend exist, so an Azure platform fails with a clear "no rendering" error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .provider import remote_state, settings

NAME = "azure"
RENDERERS: Mapping[type, Callable[[Any, Any], None]] = {}

__all__ = ["NAME", "RENDERERS", "remote_state", "settings"]
