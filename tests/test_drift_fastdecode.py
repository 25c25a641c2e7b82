"""The drift job's fast decode path is the server's parser, only faster: same rows, same rejections.

A record the fast path takes must be one `serving.formats.parse` accepts, with the same values and
the same missing values; whatever it does not take goes through `parse` itself. Hypothesis draws
bodies around every edge the two could disagree on (CSV and JSON, headers, quotes, CR, empty
lines, BOMs, nan/inf/1e400, huge ints, booleans, unicode, duplicate keys, escapes, wrong widths),
and the Reader's counts (errors and batch cuts included) are compared with the fast path on and off.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy", reason="the ml extra is not installed")
pd = pytest.importorskip("pandas", reason="the ml extra is not installed")
pytest.importorskip("pyarrow", reason="the ml extra is not installed")
pytest.importorskip("scipy", reason="the ml extra is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from serving.drift import capture, fastdecode, main  # noqa: E402
from serving.drift.capture import Reader  # noqa: E402
from serving.drift.sketch import Profile  # noqa: E402
from serving.formats import ClientError, Column, parse  # noqa: E402
from tests.test_drift import FEATURES, capture_line, request_bodies  # noqa: E402
from training.baseline import baseline  # noqa: E402

COLUMNS = [Column("a", "double"), Column("b", "double"), Column("c", "string"), Column("d", "double"),
           Column("e", "string")]
NAMES = [c.name for c in COLUMNS]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PLAIN_NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                         st.integers(-10**20, 10**20).map(str), st.just(""))
PLAIN_TEXT = st.one_of(st.sampled_from(["", "v1", "Month-to-month", "x y", "Ünïcode"]),
                       st.text(st.characters(blacklist_characters=',"\r\n', blacklist_categories=["Cs", "Cc"]),
                               max_size=5))
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(width=32).map(str),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "1" + "0" * 400,
                     "123456789012345678901234567890", " 1", "1 ", "1_000", ".5", "5.", "+1", "0x10", "1e", "-0", "007",
                     "1E+05", "nan(1)", "\u0661\u0662", "abc", "True", "a"]),
)
TEXT = st.one_of(st.sampled_from(["", "v1", "Month-to-month", "a", "e", "True", "1.5", "nan", "Ünïcode", "x y"]),
                 st.text(max_size=6))
JSON_VALUE = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
    st.sampled_from([10**400, 2**53 + 1, 2**63, 2**64 + 1, "", "1.5", "nan", "v1", [1], {"k": 1}]), st.text(max_size=4),
)


@st.composite
def csv_body(draw: st.DrawFn) -> bytes:
    """A CSV body: usually well-formed, often bent in one of the ways the server notices."""
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = [draw((NUMBER_TEXT if c.type == "double" else TEXT) if draw(st.integers(0, 7)) == 0
                    else PLAIN_NUMBER if c.type == "double" else PLAIN_TEXT) for c in COLUMNS]
        if draw(st.integers(0, 9)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, "1"]
        rows.append(row)
    if draw(st.integers(0, 7)) == 0:
        rows.insert(0, draw(st.permutations(NAMES)))  # a header row, in any order
    end = draw(st.sampled_from(["\n", "\n", "\n", "\r\n", "\n\n"]))
    text = end.join(",".join(r) for r in rows) + draw(st.sampled_from(["", "\n", end]))
    body = text.encode("utf-8")
    if draw(st.integers(0, 19)) == 0:
        body = b"\xef\xbb\xbf" + body
    if draw(st.integers(0, 19)) == 0:
        body = body.replace(b",", b'","', 1)
    return body


@st.composite
def json_body(draw: st.DrawFn) -> bytes:
    """A JSON body in each scoring format, usually numbers and strings where the signature wants them."""
    width = len(COLUMNS)
    typed = [st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**63, 2**64), st.none())
             if c.type == "double" else st.one_of(PLAIN_TEXT, st.none()) for c in COLUMNS]
    rows = [[draw(JSON_VALUE if draw(st.integers(0, 9)) == 0 else typed[j]) for j in range(width)]
            for _ in range(draw(st.integers(0, 4)))]
    if rows and draw(st.integers(0, 9)) == 0:
        rows[0] = rows[0][:-1]
    shape = draw(st.sampled_from(["split", "split", "split-cols", "split-shuffled", "split-index", "instances",
                                  "inputs", "columnar", "records", "dup", "extra", "two"]))
    if shape == "split":
        doc: Any = {"dataframe_split": {"data": rows}}
    elif shape == "split-cols":
        doc = {"dataframe_split": {"columns": NAMES, "data": rows}}
    elif shape == "split-shuffled":
        order = draw(st.permutations(range(width)))
        doc = {"dataframe_split": {"columns": [NAMES[i] for i in order],
                                   "data": [[r[i] for i in order] if len(r) == width else r for r in rows]}}
    elif shape == "split-index":  # pandas' orient="split"; the index, maybe with a colon in it, is ignored
        doc = {"dataframe_split": {"index": draw(st.lists(st.one_of(st.integers(), st.just("12:30")), max_size=2)),
                                   "columns": NAMES, "data": rows}}
    elif shape in ("instances", "inputs"):
        doc = {shape: rows}
    elif shape == "columnar":
        doc = {"inputs": {n: [r[j] for r in rows if len(r) == width] for j, n in enumerate(NAMES)}}
    elif shape == "records":
        doc = {"dataframe_records": [dict(zip(NAMES, r, strict=False)) for r in rows]}
    elif shape == "extra":
        doc = {"dataframe_split": {"data": rows}, "params": {}}
    elif shape == "two":
        doc = {"dataframe_split": {"data": rows}, "instances": rows}
    else:  # a repeated key: json keeps the last, the server refuses the body
        data = json.dumps(rows)
        return draw(st.sampled_from([f'{{"dataframe_split": {{"data": {data}, "data": {data}}}}}',
                                     f'{{"dataframe_split": 1, "dataframe_split": {{"data": {data}}}}}',
                                     f'{{"dataframe_split": {{"data": {data}, "d\\u0061ta": {data}}}}}'])).encode()
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8")


def _same(fast: np.ndarray, ref: list[Any], numeric: bool) -> bool:
    """Bit for bit for numbers (NaN is NaN, -0.0 is -0.0); for text the same string or both missing."""
    if numeric:
        want = np.array(ref, dtype=float)
        nan = np.isnan(want)
        return bool(np.array_equal(np.isnan(fast), nan) and np.array_equal(fast[~nan], want[~nan])
                    and np.array_equal(np.signbit(fast[~nan]), np.signbit(want[~nan])))
    return all((isinstance(x, float) and math.isnan(x) and isinstance(y, float) and math.isnan(y))
               or (isinstance(x, str) and x == y) for x, y in zip(fast.tolist(), ref, strict=True))


def _check(bodies: list[bytes], content_type: str) -> int:
    """Every body the fast path takes: parse takes it too, with equal values. Returns how many it took."""
    decode = fastdecode.decode_csv if content_type == "text/csv" else fastdecode.decode_json
    block, spans = decode(bodies, COLUMNS)
    taken = 0
    for body, span in zip(bodies, spans, strict=True):
        if span is None:
            continue
        taken += 1
        try:
            rows = parse(body, content_type, COLUMNS)
        except ClientError as exc:
            raise AssertionError(f"the fast path took {body!r}, which the server rejects: {exc.message}") from None
        start, end = span
        assert end - start == len(rows), body
        for j, column in enumerate(COLUMNS):
            assert _same(block[column.name][start:end], [r[j] for r in rows], column.type == "double"), \
                (body, column.name, block[column.name][start:end], [r[j] for r in rows])
    return taken


@SETTINGS
@given(st.lists(csv_body(), min_size=1, max_size=6))
def test_a_csv_body_the_fast_path_takes_is_one_the_server_reads_the_same(bodies: list[bytes]) -> None:
    _check(bodies, "text/csv")


@SETTINGS
@given(st.lists(json_body(), min_size=1, max_size=6))
def test_a_json_body_the_fast_path_takes_is_one_the_server_reads_the_same(bodies: list[bytes]) -> None:
    _check(bodies, "application/json")


def test_the_common_bodies_are_taken_by_the_fast_path() -> None:
    """Else the two tests above would pass with a fast path that takes nothing."""
    rows = [["1.5", "-0", "v1", "", "Ünïcode"], ["", "1e-05", "", "123456789012345678901234567890", "x"]]
    csv = "\n".join(",".join(r) for r in rows).encode()
    assert _check([csv, csv + b"\n", csv.replace(b"-0", b"1e400")], "text/csv") == 2
    split = json.dumps({"dataframe_split": {"columns": ["e", "d", "c", "b", "a"],
                                            "data": [["x", 2**53 + 1, None, -0.0, 0.1], [None, 3, "v", None, 1e300]]}})
    instances = json.dumps({"instances": [[1.5, None, "v1", 2, ""]]})
    assert _check([split.encode(), instances.encode(), b'{"inputs": [[1.5, true, "v1", 2, ""]]}'],
                  "application/json") == 2


@pytest.mark.parametrize("cell", [
    "nan", "NaN", "-nan", "nan(1)", "inf", "-inf", "+inf", "Infinity", "1e400", "-1e400", "1e-400", " 1", "1 ", "+1",
    "1_0", ".5", "5.", "1.e5", ".e5", "1e", "1e+", "-", "+", "e", "0x10", "0001", "-0", "1E+05", "\u0661",
    "1" + "0" * 400, "9" * 30])
def test_every_odd_number_spelling_in_a_csv_body_is_read_as_the_server_reads_it(cell: str) -> None:
    """One odd cell among plain ones: the typed pyarrow read either refuses the batch or gives a
    value that sends the record to formats.parse, or the very value parse gives."""
    plain = "1.5,2,v1,3,x"
    bodies = [f"{cell},2,v1,3,x\n{plain}".encode(), plain.encode()]
    assert _check(bodies, "text/csv") >= 1  # the plain body is always taken


@pytest.fixture(scope="module")
def small_base() -> dict:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": np.round(rng.normal(0, 1, 500), 1), "b": rng.integers(0, 3, 500).astype(float),
                          "c": rng.choice(["v1", "v2", "a"], 500), "d": np.round(rng.normal(0, 10, 500)),
                          "e": rng.choice(["x", "y"], 500)})
    base = baseline(frame, ["a", "b", "d"], ["c", "e"])
    base["features"] = {name: base["features"][name] for name in NAMES}  # the signature order of COLUMNS
    return base


@st.composite
def capture_lines(draw: st.DrawFn) -> list[bytes]:
    """A capture file: CSV (plain or base64) and JSON records, and some that are not records at all."""
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["csv", "csv", "b64", "json", "json", "bad"]))
        if kind == "bad":
            lines.append(draw(st.sampled_from(['not json', '{"captureData": {}}', '{"a": NaN}', '\ufeff{}',
                                               capture_line("1,2", "text/csv", "CSV").replace("CSV", "BASE64"),
                                               capture_line("1,2,v,3,x", "text/csv; charset=latin-1", "CSV")])))
            continue
        body = draw(csv_body() if kind in ("csv", "b64") else json_body()).decode("utf-8", "replace")
        lines.append(capture_line(body, "text/csv" if kind != "json" else "application/json",
                                  "BASE64" if kind == "b64" else kind.upper()))
    return [line.encode("utf-8", "surrogatepass") + b"\n" for line in lines]


@SETTINGS
@given(capture_lines(), st.integers(1, 8))
def test_the_readers_counts_are_the_same_with_the_fast_path_on_and_off(small_base: dict, lines: list[bytes],
                                                                        batch_rows: int) -> None:
    states = []
    for fast in (True, False):
        profile = Profile(small_base)
        reader = Reader(profile, batch_rows=batch_rows, fast=fast)
        reader.capture("f.jsonl", iter(lines[: len(lines) // 2]))
        reader.capture("g.jsonl", iter(lines[len(lines) // 2:]))
        reader.flush()
        states.append(profile.state())
    assert states[0] == states[1]


def test_the_drift_report_on_a_file_is_identical_with_the_fast_path_on_and_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from training.config import load
    from training.data import generate_churn

    config = load()
    base = baseline(generate_churn(3000, seed=11)[FEATURES], list(config.numeric), list(config.categorical))
    (tmp_path / "baseline.json").write_text(json.dumps(base))
    frame = generate_churn(3000, seed=12)[FEATURES]
    frame["monthly_charges"] *= 1.2
    frame.loc[::7, "tenure_months"] = np.nan
    bad = [capture_line("1,2", "text/csv", "CSV"), capture_line("nan," * 8 + "x", "text/csv", "CSV"), "{oops"]
    lines = request_bodies(frame, per_record=10) + bad
    lines += [capture_line(base64.b64encode(",".join(FEATURES).encode()).decode(), "text/csv", "BASE64")]
    (tmp_path / "capture.jsonl").write_text("\n".join(lines) + "\n")
    reports = []
    for fast in (True, False):
        monkeypatch.setattr(capture, "FAST_DECODE", fast)
        out = tmp_path / f"report-{fast}"
        assert main(["--baseline", str(tmp_path / "baseline.json"), "--data", str(tmp_path / "capture.jsonl"),
                     "--out", str(out)]) == 1
        reports.append((out / "drift.json").read_text())
    assert reports[0] == reports[1]
    report = json.loads(reports[0])
    assert report["rows"] == 3001 and report["unreadable_records"] == 3  # "x" is an unseen category, not an error
    assert "monthly_charges" in report["drifted_features"]


def test_a_failure_inside_the_fast_path_sends_its_records_through_the_servers_parser(
        small_base: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [capture_line("1.5,2,v1,3,x\n0.5,1,v2,,y", "text/csv", "CSV").encode(),
             capture_line(json.dumps({"instances": [[1.5, 2, "v1", 3, "x"]]}), "application/json", "JSON").encode()]
    reference = Profile(small_base)
    slow = Reader(reference, fast=False)
    slow.capture("f.jsonl", iter(lines))
    slow.flush()

    def broken(bodies: list[bytes], columns: list[Column]) -> None:
        import pyarrow as pa

        raise pa.ArrowInvalid("a pyarrow failure the checks did not foresee")

    monkeypatch.setattr(fastdecode, "decode_csv", broken)
    profile = Profile(small_base)
    reader = Reader(profile, fast=True)
    reader.capture("f.jsonl", iter(lines))
    reader.flush()
    assert profile.rows == 3 and profile.state() == reference.state()


def test_without_pyarrow_the_job_reads_everything_through_the_servers_parser(tmp_path: Path) -> None:
    """The serving image pins neither pyarrow nor orjson: the drift job must still run there."""
    import subprocess
    import sys

    line = capture_line("1.5,2,v1,3,x\n0.5,1,v2,,y", "text/csv", "CSV")
    script = f"""
import sys
sys.modules["pyarrow"] = None  # import pyarrow -> ImportError, as where it is not installed
from serving.drift import capture
assert capture.fastdecode is None and capture.FAST_DECODE is False
from serving.drift.sketch import Profile
base = {{"version": 2, "features": {{
    "a": {{"type": "numeric", "kind": "continuous", "sample": [0.5, 1.5]}},
    "b": {{"type": "numeric", "kind": "discrete", "values": [1.0, 2.0], "counts": [1, 1]}},
    "c": {{"type": "categorical", "counts": {{"v1": 1, "v2": 1}}}},
    "d": {{"type": "numeric", "kind": "continuous", "sample": [3.0]}},
    "e": {{"type": "categorical", "counts": {{"x": 1, "y": 1}}}}}}}}
profile = Profile(base)
reader = capture.Reader(profile, fast=True)
reader.capture("f.jsonl", iter([{line!r}.encode()]))
reader.flush()
print(profile.rows, profile.unreadable)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "0"]
