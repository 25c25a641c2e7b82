"""`python -m serving score`: a folder scored as the server answers, in bounded chunks, a bad file
reported beside its answer and the run failed, never a row dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")

from serving.batch_score import chunks
from serving.model import load

from .conftest import ROOT
from .test_serving import save_trained


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("model") / "model")


def _score(directory: Path, source: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "serving", "score", "--model", str(directory), "--input", str(source),
                           "--output", str(target), *extra], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False)


def test_every_file_is_scored_as_the_model_answers_line_aligned(trained, tmp_path: Path) -> None:
    model, directory, x = trained
    source, target = tmp_path / "in", tmp_path / "out"
    (source / "day=1").mkdir(parents=True)
    x.head(700).to_csv(source / "day=1" / "a.csv", index=False)  # with a header, in signature order
    x.iloc[700:1000][list(reversed(x.columns))].to_csv(source / "b.csv", index=False)  # columns in another order
    # Scored in chunks of at most 1 MB of lines (tests chunks() below at 4 KB), the header carried into each.
    done = _score(directory, source, target, "--max-payload-mb", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scored 1000 rows in 2 files; 0 not scored" in done.stdout
    for name, rows in (("day=1/a.csv", x.head(700)), ("b.csv", x.iloc[700:1000])):
        lines = (target / f"{name}.out").read_text().splitlines()
        assert len(lines) == len(rows)
        labels = [int(line.split(",")[0]) for line in lines]
        probabilities = np.array([[float(c) for c in line.split(",")[1:]] for line in lines])
        assert labels == model.predict(rows).tolist()
        assert np.allclose(probabilities, model.predict_proba(rows), atol=1e-9)


def test_chunks_stay_under_the_payload_and_keep_every_line(trained, tmp_path: Path) -> None:
    _, directory, x = trained
    path = tmp_path / "a.csv"
    x.head(500).to_csv(path, index=False)
    header = path.read_bytes().split(b"\n", 1)[0] + b"\n"
    parts = list(chunks(path, "text/csv", load(str(directory)), 4096))
    assert len(parts) > 5 and all(len(p) <= 4096 for p in parts) and all(p.startswith(header) for p in parts)
    assert sum(p.count(b"\n") - 1 for p in parts) == 500


def test_a_bad_file_is_reported_beside_its_answer_and_fails_the_run(trained, tmp_path: Path) -> None:
    _, directory, x = trained
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    lines = [json.dumps(r) for r in json.loads(x.head(20).to_json(orient="records"))]
    (source / "good.jsonl").write_text("\n".join(lines) + "\n")
    bad = [*lines[:5], json.dumps({**json.loads(lines[5]), "tenure_months": "three"}), *lines[6:]]
    (source / "bad.jsonl").write_text("\n".join(bad) + "\n")
    done = _score(directory, source, target, "--content-type", "application/jsonlines",
                  "--accept", "application/jsonlines")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "scored 20 rows in 1 files; 1 not scored" in done.stdout
    assert len((target / "good.jsonl.out").read_text().splitlines()) == 20
    assert not (target / "bad.jsonl.out").exists() and not (target / "bad.jsonl.out.partial").exists()
    assert "tenure_months" in (target / "bad.jsonl.error").read_text()


def test_a_users_mistake_is_exit_2_naming_it(trained, tmp_path: Path) -> None:
    _, directory, _ = trained
    missing = _score(directory, tmp_path / "nowhere", tmp_path / "out")
    assert missing.returncode == 2 and "--input" in missing.stderr and "not a directory" in missing.stderr
    (tmp_path / "in").mkdir()
    kind = _score(directory, tmp_path / "in", tmp_path / "out", "--accept", "text/xml")
    assert kind.returncode == 2 and "--accept 'text/xml'" in kind.stderr
    model = _score(tmp_path, tmp_path / "in", tmp_path / "out")
    assert model.returncode == 2 and "--model" in model.stderr
