"""The drift decision's error rates, measured: 100 seeded trials per scenario.

Baseline from 5,000 training rows; each trial captures 5,000 fresh rows. Under no change no feature
may be flagged in at least 95 trials (Holm at alpha 0.01 promises 99 on average); each real change
must be flagged, on the changed feature only, in at least 95. The KS statistic computed from the
live counts must equal scipy's two-sample statistic on the raw data (exactly when the baseline
kept every training value, within the DKW bound of its sample otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

pd = pytest.importorskip("pandas", reason="the ml extra is not installed")
np = pytest.importorskip("numpy", reason="the ml extra is not installed")
stats = pytest.importorskip("scipy.stats", reason="the ml extra is not installed")

from serving.drift import Profile, Thresholds, compare  # noqa: E402
from training.baseline import SAMPLE_MAX, baseline  # noqa: E402
from training.config import load  # noqa: E402
from training.data import generate_churn  # noqa: E402

CONFIG = load()
FEATURES = CONFIG.features
TRIALS, ROWS = 100, 5000
TRAIN = generate_churn(ROWS, seed=7)[FEATURES]
BASE = baseline(TRAIN, list(CONFIG.numeric), list(CONFIG.categorical))
CHARGES_SD = float(TRAIN["monthly_charges"].std())


def profile_of(base: dict, frame: pd.DataFrame) -> Profile:
    profile = Profile(base)
    profile.add({c: frame[c].to_numpy(dtype=float if base["features"][c]["type"] == "numeric" else object)
                 for c in base["features"]}, len(frame))
    return profile


def _senior_90(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.assign(senior_citizen=(np.random.default_rng(seed).random(len(frame)) < 0.9).astype(int))


SCENARIOS: dict[str, tuple[list[str], Callable[[pd.DataFrame, int], pd.DataFrame]]] = {
    "monthly_charges shifted by 0.2 sd": (
        ["monthly_charges"], lambda f, _: f.assign(monthly_charges=f["monthly_charges"] + 0.2 * CHARGES_SD)),
    "senior_citizen from 16% to 90%": (["senior_citizen"], _senior_90),
    "monthly_charges stops arriving": (["monthly_charges"], lambda f, _: f.assign(monthly_charges=np.nan)),
    "payment_method stops arriving": (["payment_method"], lambda f, _: f.assign(payment_method=np.nan)),
}


def flagged(change: Callable[[pd.DataFrame, int], pd.DataFrame] | None, first_seed: int,
            thresholds: Thresholds | None = None) -> list[list[str]]:
    out = []
    for trial in range(TRIALS):
        frame = generate_churn(ROWS, seed=first_seed + trial)[FEATURES]
        if change is not None:
            frame = change(frame, trial)
        out.append(compare(profile_of(BASE, frame), thresholds or Thresholds())["drifted_features"])
    return out


@pytest.mark.parametrize("min_effect", [Thresholds.min_effect, 0.0])
def test_fresh_data_from_the_training_distribution_is_not_flagged(min_effect: float) -> None:
    """Also without the effect floor: Holm's correction alone keeps the false alarms rare."""
    results = flagged(None, 1000, Thresholds(Thresholds.alpha, min_effect))
    clean = sum(not r for r in results)
    print(f"no change (min_effect {min_effect}): {clean}/{TRIALS} trials without a flagged feature")
    assert clean >= 95


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_real_change_is_flagged_on_the_changed_feature(scenario: str) -> None:
    expected, change = SCENARIOS[scenario]
    results = flagged(change, 2000)
    hits = sum(r == expected for r in results)
    print(f"{scenario}: flagged exactly {expected} in {hits}/{TRIALS} trials")
    assert hits >= 95


def test_the_ks_statistic_from_the_counts_is_scipys_on_the_raw_data() -> None:
    worst = 0.0
    for trial in range(20):
        live = generate_churn(ROWS, seed=3000 + trial)[FEATURES]
        live["monthly_charges"] += 0.1 * trial  # from no shift to a large one
        report = compare(profile_of(BASE, live))
        for name in ("tenure_months", "monthly_charges", "total_charges"):
            a, b = TRAIN[name].dropna().to_numpy(float), live[name].dropna().to_numpy(float)
            exact = stats.ks_2samp(a, b, method="asymp")
            feature = report["features"][name]
            worst = max(worst, abs(feature["effect"] - exact.statistic))
            assert feature["p_value"] == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300)
    print(f"KS from counts vs ks_2samp on the raw data: largest difference {worst:.1e}")
    assert worst <= 1e-12


def test_a_sampled_baseline_stays_within_its_documented_error() -> None:
    """Beyond SAMPLE_MAX training values the baseline keeps a uniform sample; by the DKW inequality
    its ECDF is within sqrt(ln(2/δ) / (2 SAMPLE_MAX)) of the training ECDF with probability 1-δ."""
    train = generate_churn(5 * SAMPLE_MAX, seed=21)[FEATURES]
    base = baseline(train, list(CONFIG.numeric), list(CONFIG.categorical))
    assert base["features"]["monthly_charges"]["sampled"] is True
    assert len(base["features"]["monthly_charges"]["sample"]) == SAMPLE_MAX
    bound = np.sqrt(np.log(2 / 0.001) / (2 * SAMPLE_MAX))
    worst = 0.0
    for trial in range(5):
        live = generate_churn(ROWS, seed=4000 + trial)[FEATURES]
        live["monthly_charges"] *= 1 + 0.05 * trial
        report = compare(profile_of(base, live))
        for name in ("tenure_months", "monthly_charges", "total_charges"):
            exact = stats.ks_2samp(train[name].dropna().to_numpy(float), live[name].dropna().to_numpy(float))
            worst = max(worst, abs(report["features"][name]["effect"] - exact.statistic))
    print(f"sampled baseline: largest |D - D_full| {worst:.4f} (bound {bound:.4f})")
    assert worst <= bound
