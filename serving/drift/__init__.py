"""Drift detection: compare captured inputs with the training baseline (baseline.json).

    python -m serving.drift --baseline baseline.json --data captured.jsonl|captured.csv [--out DIR]

Numeric features: Kolmogorov-Smirnov against the baseline distribution (its CDF interpolated from
the stored quantiles) and the population stability index (PSI) on the baseline's decile edges.
Categorical features: chi-square goodness of fit against the baseline frequencies, and PSI over
the categories (unseen ones pooled). A feature drifts when its PSI reaches the threshold *and* its
test is significant: with large samples every p-value is tiny, so PSI carries the size of the shift.

Writes drift.json and drift.html (with a PNG chart) and exits 1 when any feature drifted, so a
scheduled job can raise an alarm; exit 2 on bad input.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

EPSILON = 1e-4  # floor for empty bins in PSI
EXACT_KS_MAX = 10_000


class DriftInputError(ValueError):
    """Unreadable baseline or captured data; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    """PSI at which a feature counts as shifted. 0.1-0.2 is a moderate shift, above 0.2 a major one."""
    p_value: float = 0.01
    """Significance the KS or chi-square test must reach as well."""


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(expected, EPSILON, None)
    a = np.clip(actual, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(spec: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return {"type": "numeric", "rows": 0, "missing": 1.0, "psi": None, "ks": None, "p_value": None}
    # KS: the baseline CDF is piecewise linear through the stored quantiles.
    levels = np.array([float(q) for q in spec["quantiles"]])
    knots = np.array(list(spec["quantiles"].values()), dtype=float)
    knots, first = np.unique(knots, return_index=True)
    levels = levels[first]
    ordered = np.sort(present)
    n = ordered.size
    cdf = np.interp(ordered, knots, levels, left=0.0, right=1.0)
    ecdf_hi = np.arange(1, n + 1) / n
    ecdf_lo = np.arange(0, n) / n
    ks = float(max(np.max(ecdf_hi - cdf), np.max(cdf - ecdf_lo)))
    # Exact distribution for small samples; beyond that the asymptotic one, as scipy's kstest does
    # (the exact one costs most of a second at a million rows and agrees to many digits).
    p_value = float(stats.kstwo.sf(ks, n) if n <= EXACT_KS_MAX else stats.kstwobign.sf(ks * np.sqrt(n)))
    # PSI on the baseline's edges, the outer bins open-ended.
    edges = np.asarray(spec["histogram"]["edges"], dtype=float)
    inner = edges[1:-1]
    counts = np.bincount(np.searchsorted(inner, present, side="right"), minlength=len(edges) - 1)
    actual = counts / n
    return {"type": "numeric", "rows": int(n), "missing": float(1 - n / values.size),
            "psi": _psi(np.asarray(spec["histogram"]["frequencies"]), actual), "ks": ks, "p_value": p_value,
            "mean": float(present.mean()), "baseline_mean": spec["mean"]}


def categorical_drift(spec: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    n = len(present)
    if n == 0:
        return {"type": "categorical", "rows": 0, "missing": 1.0, "psi": None, "chi2": None, "p_value": None}
    baseline = spec["frequencies"]
    counts = present.value_counts()
    observed = np.array([counts.get(c, 0) for c in baseline] + [counts[~counts.index.isin(baseline)].sum()],
                        dtype=float)
    expected_share = np.array([*baseline.values(), 0.0])
    expected = np.clip(expected_share, EPSILON, None)
    expected = expected / expected.sum() * n
    chi2, p_value = stats.chisquare(observed, expected)
    unseen = sorted(set(counts.index) - set(baseline))
    return {"type": "categorical", "rows": int(n), "missing": float(1 - n / len(values)),
            "psi": _psi(expected_share, observed / n), "chi2": float(chi2), "p_value": float(p_value),
            "unseen_categories": unseen[:20]}


def compare(baseline: dict[str, Any], data: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """The drift report: per feature and overall."""
    features: dict[str, Any] = {}
    for name, spec in baseline["features"].items():
        if spec["type"] == "numeric":
            column = pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)
            result = numeric_drift(spec, column)
        else:
            result = categorical_drift(spec, data[name])
        psi, p = result["psi"], result["p_value"]
        result["drifted"] = bool(psi is not None and psi >= thresholds.psi and p < thresholds.p_value)
        features[name] = result
    drifted = sorted(n for n, r in features.items() if r["drifted"])
    scores = [r["psi"] for r in features.values() if r["psi"] is not None]
    return {
        "rows": len(data),
        "thresholds": {"psi": thresholds.psi, "p_value": thresholds.p_value},
        "drifted": bool(drifted),
        "drifted_features": drifted,
        "mean_psi": float(np.mean(scores)) if scores else None,
        "max_psi": float(np.max(scores)) if scores else None,
        "features": features,
    }


# --- reading captured data ------------------------------------------------------------------------

def _records_from_capture(line: dict[str, Any], columns: list[str]) -> list[list[Any]]:
    """Rows of one SageMaker data-capture record (endpointInput: CSV or JSON, plain or base64)."""
    payload = line["captureData"]["endpointInput"]
    data = payload["data"]
    if payload.get("encoding") == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    content_type = payload.get("observedContentType", "text/csv").split(";")[0].strip()
    if content_type == "application/json":
        body = json.loads(data)
        if "dataframe_split" in body:
            split = body["dataframe_split"]
            order = [split["columns"].index(c) for c in columns]
            return [[row[i] for i in order] for row in split["data"]]
        records = body.get("dataframe_records") or body.get("instances") or body.get("inputs")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return [[r.get(c) for c in columns] for r in records]
        if isinstance(records, list):
            return [list(r) for r in records]
        raise ValueError("a JSON body in none of the MLflow scoring formats")
    frame = pd.read_csv(io.StringIO(data), header=None, dtype=str, keep_default_na=False, na_values=[""])
    if list(frame.iloc[0]) == columns:  # a CSV request sent with its header
        frame = frame.iloc[1:]
    return frame.to_numpy().tolist()


def read_captured(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DriftInputError(f"{path}: no such file")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows: list[list[Any]] = []
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                try:
                    rows += _records_from_capture(json.loads(text), columns)
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    raise DriftInputError(f"{path}:{number}: not a SageMaker data-capture record ({exc})") from None
        frame = pd.DataFrame(rows, columns=columns)
    else:
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DriftInputError(f"{path}: not a readable CSV file ({exc})") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DriftInputError(f"{path}: missing column {missing[0]!r} of the baseline")
    if frame.empty:
        raise DriftInputError(f"{path}: holds no rows")
    return frame


def read_baseline(path: Path) -> dict[str, Any]:
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(baseline.get("features"), dict):
            raise KeyError("features")
        return baseline
    except FileNotFoundError:
        raise DriftInputError(f"{path}: no such file") from None
    except (ValueError, KeyError, AttributeError) as exc:
        raise DriftInputError(f"{path}: not a training baseline ({exc})") from None


# --- the human-readable report --------------------------------------------------------------------

def _chart(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["features"])
    psi = [report["features"][n]["psi"] or 0.0 for n in names]
    colors = ["#c0392b" if report["features"][n]["drifted"] else "#2e86c1" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    ax.barh(names[::-1], psi[::-1], color=colors[::-1])
    ax.axvline(report["thresholds"]["psi"], color="black", linestyle="--", label="threshold")
    ax.set_xlabel("population stability index")
    ax.set_title("Drift per feature (red: drifted)")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _row(name: str, r: dict[str, Any]) -> str:
    psi = "" if r["psi"] is None else f"{r['psi']:.3f}"
    p_value = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
    state = "DRIFTED" if r["drifted"] else "ok"
    return (f"<tr class={'drift' if r['drifted'] else 'ok'}><td>{html.escape(name)}</td><td>{r['type']}</td>"
            f"<td>{psi}</td><td>{p_value}</td><td>{r['missing']:.1%}</td><td>{state}</td></tr>")


def write_reports(report: dict[str, Any], out: Path) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path, html_path = out / "drift.json", out / "drift.png", out / "drift.html"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    png = _chart(report)
    png_path.write_bytes(png)
    rows = "".join(_row(name, result) for name, result in report["features"].items())
    verdict = (f"Drift in {len(report['drifted_features'])} of {len(report['features'])} features: "
               f"{', '.join(report['drifted_features'])}" if report["drifted"] else "No drift")
    html_path.write_text(
        "<!doctype html><meta charset=utf-8><title>Drift report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        ".drift{background:#fadbd8}</style>"
        f"<h1>Drift report</h1><p><b>{html.escape(verdict)}</b> ({report['rows']} captured rows; "
        f"PSI threshold {report['thresholds']['psi']}, p-value {report['thresholds']['p_value']})</p>"
        f"<img alt='PSI per feature' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        "<table><tr><th>feature</th><th>type</th><th>PSI</th><th>p-value</th><th>missing</th><th></th></tr>"
        f"{rows}</table>\n", encoding="utf-8")
    return json_path, png_path, html_path


DEFAULT_CONFIG = Path(__file__).resolve().parent / "drift.yaml"


def read_thresholds(path: Path) -> Thresholds:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DriftInputError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise DriftInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or set(doc) - {"psi", "p_value"}:
        raise DriftInputError(f"{path}: expected the keys psi and p_value; got {doc!r}")
    values = {}
    for key in ("psi", "p_value"):
        value = doc.get(key, getattr(Thresholds, key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise DriftInputError(f"{path}: {key}: expected a positive number; got {value!r}")
        values[key] = float(value)
    return Thresholds(**values)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m serving.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="baseline.json from the training run")
    parser.add_argument("--data", type=Path, required=True, help="captured .jsonl (SageMaker data capture) or .csv")
    parser.add_argument("--out", type=Path, default=Path("drift-report"), help="directory for the reports")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="thresholds (serving/drift.yaml)")
    parser.add_argument("--psi-threshold", type=float, help="overrides psi in the config")
    parser.add_argument("--p-value", type=float, help="overrides p_value in the config")
    args = parser.parse_args(argv)
    try:
        configured = read_thresholds(args.config)
        thresholds = Thresholds(args.psi_threshold or configured.psi, args.p_value or configured.p_value)
        baseline = read_baseline(args.baseline)
        data = read_captured(args.data, list(baseline["features"]))
    except DriftInputError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    report = compare(baseline, data, thresholds)
    paths = write_reports(report, args.out)
    verdict = (f"DRIFT in {', '.join(report['drifted_features'])}" if report["drifted"]
               else "no drift")
    print(f"{verdict} over {report['rows']} rows (mean PSI {report['mean_psi']:.3f}); reports: "
          + ", ".join(str(p) for p in paths))
    return 1 if report["drifted"] else 0


if __name__ == "__main__":
    sys.exit(main())
