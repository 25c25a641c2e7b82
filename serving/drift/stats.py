"""The drift decision: two-sample tests on the counts, an effect size, and Holm's correction.

Per feature, two tests against the training baseline, both two-sample (the baseline is a sample
too, so its sampling error is part of the p-value):

- its distribution among present values: Kolmogorov-Smirnov for a continuous numeric feature
  (effect: the KS statistic D, the largest gap between the two CDFs); a chi-square contingency test
  on the 2 x k table of counts for a discrete numeric or a categorical feature, with unseen values
  as one more column and columns of expected count below 5 pooled (effect: the total variation
  distance, the largest gap in probability over any set of values);
- its missing share: a 2 x 2 contingency test (Fisher's exact test when an expected count is
  below 5; effect: the absolute difference of the two shares).

All the p-values of all features form one family, adjusted with Holm's step-down method, which
keeps the chance of flagging any feature when nothing changed at most `alpha`. A feature drifts
when one of its tests is rejected at `alpha` after adjustment *and* that test's effect is at least
`min_effect`: with millions of captured rows a negligible shift is significant, and the effect
size says whether it matters. Both effects are differences of probabilities, so one threshold fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .sketch import Categorical, Continuous, Discrete, Profile

MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class Thresholds:
    alpha: float = 0.01
    """Family-wise error rate over all features' tests (Holm)."""
    min_effect: float = 0.03
    """Smallest effect (KS D, total variation distance, or change of the missing share) that counts."""


def ks_statistic(feature: Continuous) -> float:
    """The two-sample KS statistic between the baseline sample and the live values, from the counts.

    Between grid points the baseline CDF is flat and the live one rises, so the gap is largest at a
    grid point or just below the next one; both CDFs are known there exactly (sketch.py)."""
    m, n = feature.base_counts.sum(), feature.present
    base_at = np.cumsum(feature.base_counts) / m                                    # F_B(g_i)
    base_before = np.concatenate(([0.0], base_at[:-1]))                              # F_B just below g_i
    live_before = (np.cumsum(feature.between[:-1]) + np.concatenate(([0], np.cumsum(feature.equal)[:-1]))) / n
    live_at = live_before + feature.equal / n                                        # F_L(g_i)
    return float(max(np.max(np.abs(base_at - live_at)), np.max(np.abs(base_before - live_before))))


def ks_p_value(d: float, m: int, n: int) -> float:
    """scipy.stats.ks_2samp's asymptotic p-value (method='asymp'), for two samples of m and n."""
    return float(stats.kstwo.sf(d, np.round(m * n / (m + n))))


def contingency(base: np.ndarray, live: np.ndarray) -> float:
    """p-value of the chi-square test of homogeneity on the 2 x k table (base, live).

    Columns whose expected count is below MIN_EXPECTED are pooled (chi-square is not valid on
    them); a 2 x 2 table that still has a small expected count gets Fisher's exact test."""
    table = np.vstack([base, live]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if (table.sum(axis=1) == 0).any():
        return 1.0
    while table.shape[1] > 2:
        low = _expected(table).min(axis=0) < MIN_EXPECTED
        if not low.any():
            break
        if low.sum() == 1:  # a lone small column joins the next smallest one
            low[np.argsort(table.sum(axis=0))[:2]] = True
        table = np.hstack([table[:, ~low], table[:, low].sum(axis=1, keepdims=True)])
    if table.shape[1] < 2:
        return 1.0
    if table.shape[1] == 2 and _expected(table).min() < MIN_EXPECTED:
        return float(stats.fisher_exact(table).pvalue)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _expected(table: np.ndarray) -> np.ndarray:
    return np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()


def total_variation(base: np.ndarray, live: np.ndarray) -> float:
    if base.sum() == 0 or live.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(base / base.sum() - live / live.sum()).sum())


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values: reject the i-th when its adjusted value is below alpha."""
    order = np.argsort(p_values)
    k = len(p_values)
    adjusted = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _distribution(spec: dict[str, Any], feature: Any) -> dict[str, Any]:
    if feature.present == 0:
        return {"test": None, "effect": None, "p_value": None}
    if isinstance(feature, Continuous):
        d = ks_statistic(feature)
        return {"test": "ks", "effect": d, "p_value": ks_p_value(d, int(feature.base_counts.sum()), feature.present),
                "mean": feature.total / feature.present, "baseline_mean": spec.get("mean")}
    if isinstance(feature, Discrete):
        base = np.append(feature.base_counts, 0)
        return {"test": "chi2", "effect": total_variation(base, feature.counts),
                "p_value": contingency(base, feature.counts), "unseen_values": int(feature.counts[-1])}
    assert isinstance(feature, Categorical)
    base = np.append(feature.base_counts, 0)
    live = np.append(feature.counts, feature.unseen_total)
    top = sorted(feature.unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {"test": "chi2", "effect": total_variation(base, live), "p_value": contingency(base, live),
            "unseen": feature.unseen_total, "unseen_categories": [name for name, _ in top]}


def compare(profile: Profile, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """The drift report: per feature (tests, effects, Holm-adjusted p-values, verdict) and overall."""
    features: dict[str, dict[str, Any]] = {}
    tests: list[tuple[str, str, float]] = []
    for name, feature in profile.features.items():
        spec = profile.baseline["features"][name]
        base_missing, base_rows = int(spec["missing"]), int(spec["count"])
        live_rows = feature.present + feature.missing
        result = {"type": spec["type"], "kind": spec.get("kind", "categorical"), "rows": live_rows,
                  "present": feature.present, **_distribution(spec, feature)}
        missing_share = feature.missing / live_rows if live_rows else None
        baseline_share = base_missing / base_rows if base_rows else 0.0
        result |= {"missing": missing_share, "baseline_missing": baseline_share,
                   "missing_effect": None if missing_share is None else abs(missing_share - baseline_share),
                   "missing_p_value": None}
        if live_rows:
            result["missing_p_value"] = contingency(np.array([base_missing, base_rows - base_missing]),
                                                    np.array([feature.missing, feature.present]))
            tests.append((name, "missing", result["missing_p_value"]))
        if result["p_value"] is not None:
            tests.append((name, "distribution", result["p_value"]))
        features[name] = result
    adjusted = holm([p for _, _, p in tests]) if tests else []
    for (name, which, _), p in zip(tests, adjusted, strict=True):
        features[name]["missing_p_adjusted" if which == "missing" else "p_adjusted"] = p
    for result in features.values():
        result["drifted"] = bool(
            _rejected(result.get("p_adjusted"), result["effect"], thresholds)
            or _rejected(result.get("missing_p_adjusted"), result["missing_effect"], thresholds))
    drifted = sorted(name for name, r in features.items() if r["drifted"])
    return {
        "rows": profile.rows,
        "records": profile.records,
        "unreadable_records": profile.unreadable,
        "unreadable_examples": profile.errors,
        "thresholds": {"alpha": thresholds.alpha, "min_effect": thresholds.min_effect},
        "rule": "Holm-adjusted p < alpha and effect >= min_effect, per test (distribution, missing share)",
        "drifted": bool(drifted),
        "drifted_features": drifted,
        "features": features,
    }


def _rejected(p_adjusted: float | None, effect: float | None, thresholds: Thresholds) -> bool:
    return p_adjusted is not None and effect is not None and p_adjusted < thresholds.alpha \
        and effect >= thresholds.min_effect
