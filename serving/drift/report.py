"""The human-readable drift report: drift.json, drift.png and a self-contained drift.html."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any


def _chart(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["features"])
    effect = [max(report["features"][n]["effect"] or 0.0, report["features"][n]["missing_effect"] or 0.0)
              for n in names]
    colors = ["#c0392b" if report["features"][n]["drifted"] else "#2e86c1" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.5))
    ax.barh(names[::-1], effect[::-1], color=colors[::-1])
    ax.axvline(report["thresholds"]["min_effect"], color="black", linestyle="--", label="min_effect")
    ax.set_xlabel("effect: KS D, total variation distance or change of the missing share (largest)")
    ax.set_title("Drift per feature (red: drifted)")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _row(name: str, r: dict[str, Any]) -> str:
    state = "DRIFTED" if r["drifted"] else "ok"
    unseen = r.get("unseen", r.get("unseen_values", ""))
    return (f"<tr class={'drift' if r['drifted'] else 'ok'}><td>{html.escape(name)}</td><td>{r['kind']}</td>"
            f"<td>{r['test'] or ''}</td><td>{_number(r['effect'], '.3f')}</td>"
            f"<td>{_number(r.get('p_adjusted'), '.2g')}</td><td>{_number(r['missing'], '.1%')}</td>"
            f"<td>{_number(r['baseline_missing'], '.1%')}</td><td>{_number(r.get('missing_p_adjusted'), '.2g')}</td>"
            f"<td>{unseen}</td><td>{state}</td></tr>")


def write(report: dict[str, Any], out: Path) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path, html_path = out / "drift.json", out / "drift.png", out / "drift.html"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    png = _chart(report)
    png_path.write_bytes(png)
    rows = "".join(_row(name, result) for name, result in report["features"].items())
    verdict = (f"Drift in {len(report['drifted_features'])} of {len(report['features'])} features: "
               f"{', '.join(report['drifted_features'])}" if report["drifted"] else "No drift")
    skipped = "".join(f"<li>{html.escape(e)}</li>" for e in report["unreadable_examples"])
    t = report["thresholds"]
    html_path.write_text(
        "<!doctype html><meta charset=utf-8><title>Drift report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        ".drift{background:#fadbd8}</style>"
        f"<h1>Drift report</h1><p><b>{html.escape(verdict)}</b> ({report['rows']} captured rows; "
        f"{report['unreadable_records']} unreadable records skipped; Holm-adjusted alpha {t['alpha']}, "
        f"min_effect {t['min_effect']})</p>"
        f"<img alt='effect per feature' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        "<table><tr><th>feature</th><th>kind</th><th>test</th><th>effect</th><th>p (Holm)</th><th>missing</th>"
        "<th>baseline missing</th><th>p missing (Holm)</th><th>unseen</th><th></th></tr>"
        f"{rows}</table>" + (f"<h2>Skipped records (first {len(report['unreadable_examples'])})</h2><ul>{skipped}</ul>"
                             if skipped else "") + "\n", encoding="utf-8")
    return json_path, png_path, html_path
