"""Prices for `mlops cost`: a shipped table, the AWS Price List API, the Azure retail prices API.

Why a shipped table first: the plan summary must stay offline and reproducible, so it reads only
mlops_dsl/prices/<cloud>.json, whose every row names its source URL and the date it was read. A
price that could not be read there is `usd: null`, shown as missing, never guessed. The live APIs
are opt-in (`mlops cost --live`) and sit behind injectable clients so tests need no network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .cost import PriceRow
from .errors import MlopsError

AWS_TABLE = "mlops_dsl/prices/aws.json"
AZURE_TABLE = "mlops_dsl/prices/azure.json"
AZURE_RETAIL_URL = "https://prices.azure.com/api/retail/prices"
AWS_PRICE_LIST = "https://pricing.us-east-1.amazonaws.com (AWS Price List API, GetProducts)"


def _load_table(cloud: str, path: Path | None = None) -> dict[tuple[str, str, str], PriceRow]:
    where = str(path) if path else f"mlops_dsl/prices/{cloud}.json"
    try:
        text = path.read_text() if path else resources.files("mlops_dsl.prices").joinpath(f"{cloud}.json").read_text()
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise MlopsError(f"{where}: cannot read the price table: {exc}") from None
    rows, problems = {}, []
    for i, row in enumerate(data.get("rows") or ()):
        missing = [k for k in ("service", "key", "region", "usd", "unit", "source", "date") if k not in row]
        if missing:
            problems.append(f"{where}: rows[{i}]: missing {', '.join(missing)} (every row names its source and date)")
            continue
        if row["usd"] is not None and not isinstance(row["usd"], (int, float)):
            problems.append(f"{where}: rows[{i}].usd: expected a number or null, got {row['usd']!r}")
            continue
        rows[(row["service"], row["key"], row["region"])] = PriceRow(row["usd"], row["unit"], row["source"],
                                                                     row["date"])
    if problems:
        raise MlopsError(problems)
    return rows


@dataclass
class ShippedTable:
    """The price tables shipped with the package (or given paths, for tests)."""

    paths: Mapping[str, Path] = field(default_factory=dict)
    _rows: dict[str, dict[tuple[str, str, str], PriceRow]] = field(default_factory=dict)

    def rows(self, cloud: str) -> dict[tuple[str, str, str], PriceRow]:
        if cloud not in self._rows:
            self._rows[cloud] = _load_table(cloud, self.paths.get(cloud))
        return self._rows[cloud]

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None:
        rows = self.rows(cloud)
        return rows.get((service, key, region)) or rows.get((service, key, "*"))

    def hint(self, cloud: str) -> str:
        return f"add it to {self.paths.get(cloud) or f'mlops_dsl/prices/{cloud}.json'} (with its source and date)"

    def sources(self) -> list[str]:
        seen = {f"{r.source} (read {r.date})" for cloud in ("aws", "azure") for r in self.rows(cloud).values()}
        return sorted(seen)


# --- AWS Price List API ---------------------------------------------------------------------------

# Price List filters per service of ours: (ServiceCode, filters, usagetype fragment that must match).
_SAGEMAKER_COMPONENT = {"sagemaker-hosting": "Host:", "sagemaker-training": "Train:",
                        "sagemaker-processing": "Processing:", "sagemaker-transform": "Tsform:"}


def _on_demand_usd(product_json: str) -> tuple[float, str] | None:
    """The first on-demand USD price of one GetProducts PriceList entry, and its unit."""
    product = json.loads(product_json)
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if usd is not None and float(usd) > 0:
                return float(usd), str(dimension.get("unit", ""))
    return None


@dataclass
class AwsPriceList:
    """Reads prices from the AWS Price List API (boto3 `pricing`, us-east-1); the shipped table answers
    what it does not cover. `client` is injectable (botocore Stubber in the tests)."""

    fallback: ShippedTable
    client: Any = None
    date: str = ""
    _cache: dict[tuple[str, str, str], PriceRow | None] = field(default_factory=dict)
    unavailable: str = ""  # why the API could not be asked (no credentials, access denied): the table answers

    def _client(self) -> Any:
        if self.client is None:
            import boto3

            self.client = boto3.client("pricing", region_name="us-east-1")
        return self.client

    def _products(self, service_code: str, filters: list[tuple[str, str]]) -> list[str]:
        out, token = [], None
        while True:
            kwargs: dict[str, Any] = {"ServiceCode": service_code, "FormatVersion": "aws_v1", "MaxResults": 100,
                                      "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in filters]}
            if token:
                kwargs["NextToken"] = token
            page = self._client().get_products(**kwargs)
            out += page.get("PriceList") or []
            token = page.get("NextToken")
            if not token:
                return out

    def _live(self, service: str, key: str, region: str) -> PriceRow | None:
        if service in _SAGEMAKER_COMPONENT:
            products = self._products("AmazonSageMaker", [("regionCode", region), ("instanceName", key)])
            fragment = _SAGEMAKER_COMPONENT[service]
            products = [p for p in products
                        if fragment in json.loads(p).get("product", {}).get("attributes", {}).get("usagetype", "")]
            unit = "hour"
        elif service == "kms":
            products = self._products("awskms", [("regionCode", region), ("productFamily", "Encryption Key")])
            unit = "month"
        elif service == "vpc-endpoint":
            products = self._products("AmazonVPC", [("regionCode", region), ("productFamily", "VpcEndpoint"),
                                                    ("endpointType", "PrivateLink")])
            products = [p for p in products if "VpcEndpoint-Hours" in p]
            unit = "hour"
        else:
            return None
        for p in products:
            found = _on_demand_usd(p)
            if found:
                return PriceRow(found[0], unit, AWS_PRICE_LIST, self.date)
        return None

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None:
        if cloud == "aws":
            cache_key = (service, key, region)
            if cache_key not in self._cache and not self.unavailable:
                from botocore.exceptions import ClientError, NoCredentialsError

                try:
                    self._cache[cache_key] = self._live(service, key, region)
                except NoCredentialsError as exc:
                    self.unavailable = str(exc)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("AccessDeniedException", "AccessDenied"):
                        raise
                    self.unavailable = str(exc)
            if self._cache.get(cache_key) is not None:
                return self._cache[cache_key]
        return self.fallback.price(cloud, service, key, region)

    def hint(self, cloud: str) -> str:
        return self.fallback.hint(cloud)


# --- Azure retail prices API ----------------------------------------------------------------------

_AZURE_FILTERS: dict[str, Callable[[str, str], str]] = {
    "ml-online-vm": lambda key, region: (f"serviceName eq 'Virtual Machines' and armSkuName eq '{key}' and "
                                         f"armRegionName eq '{region}' and priceType eq 'Consumption'"),
    "ml-compute-vm": lambda key, region: (f"serviceName eq 'Virtual Machines' and armSkuName eq '{key.split(':')[0]}'"
                                          f" and armRegionName eq '{region}' and priceType eq 'Consumption'"),
    "private-endpoint": lambda key, region: (f"productName eq 'Virtual Network Private Link' and armRegionName eq "
                                             f"'{region}' and meterName eq 'Standard Private Endpoint'"),
}


@dataclass
class AzureRetail:
    """Reads prices from the Azure retail prices API (public, no auth). `fetch(url, params)` returns the
    decoded JSON page; injectable so tests use a fake."""

    fallback: ShippedTable
    fetch: Callable[[str, Mapping[str, str]], Mapping[str, Any]] | None = None
    date: str = ""

    def _fetch(self, url: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        if self.fetch is not None:
            return self.fetch(url, params)
        import urllib.parse
        import urllib.request

        with urllib.request.urlopen(f"{url}?{urllib.parse.urlencode(params)}", timeout=20) as answer:
            return json.loads(answer.read())

    def _live(self, service: str, key: str, region: str) -> PriceRow | None:
        make = _AZURE_FILTERS.get(service)
        if make is None:
            return None
        items = self._fetch(AZURE_RETAIL_URL, {"$filter": make(key, region)}).get("Items") or []
        low_priority = key.endswith(":LowPriority")
        for item in items:
            name = f"{item.get('skuName', '')} {item.get('meterName', '')}"
            if "Windows" in str(item.get("productName", "")) or ("Spot" in name):
                continue
            if ("Low Priority" in name) != low_priority:
                continue
            if str(item.get("unitOfMeasure", "")).startswith("1 Hour"):
                return PriceRow(float(item["retailPrice"]), "hour", AZURE_RETAIL_URL, self.date)
        return None

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None:
        if cloud == "azure":
            row = self._live(service, key, region)
            if row is not None:
                return row
        return self.fallback.price(cloud, service, key, region)

    def hint(self, cloud: str) -> str:
        return self.fallback.hint(cloud)


@dataclass
class Chain:
    """AWS from one book, Azure from another."""

    aws: Any
    azure: Any

    def price(self, cloud: str, service: str, key: str, region: str) -> PriceRow | None:
        return (self.aws if cloud == "aws" else self.azure).price(cloud, service, key, region)

    def hint(self, cloud: str) -> str:
        return (self.aws if cloud == "aws" else self.azure).hint(cloud)
