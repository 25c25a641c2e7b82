"""Strict input: every malformed body is a 4xx naming the problem, both engines answer alike, a
bad request never changes another one's answer, CSV headers map by name, booleans serve."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

from serving.formats import Column, parse

from .test_serving import CONFIG, FEATURES, _call, _ready, _records, _run, save_trained

ENGINES = [{}, {"SERVING_ENGINE": "sklearn"}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    return save_trained(tmp_path_factory.mktemp("model") / "model")


def _post(records: list[dict]) -> bytes:
    return json.dumps({"dataframe_records": records}).encode()


def _with(record: dict, column: str, literal: str) -> bytes:
    """A body with one cell spelled as raw JSON (json.dumps cannot write 1e400 or a 400-digit int)."""
    marker = "__cell__"
    return _post([{**record, column: marker}]).replace(f'"{marker}"'.encode(), literal.encode())


NON_FINITE = [
    ("1e400", "expected a finite number; got inf"),
    ("-1e400", "expected a finite number; got -inf"),
    ("Infinity", "expected a finite number; got inf"),
    ("-Infinity", "expected a finite number; got -inf"),
    ("1" + "0" * 400, "overflows a 64-bit float"),
    ('"inf"', "got 'inf' (an infinite value)"),
    ('"-1e999"', "got '-1e999' (overflows a 64-bit float)"),
]


@pytest.mark.parametrize("engine", ENGINES, ids=["compiled", "sklearn"])
def test_non_finite_numbers_are_400_naming_column_and_row_on_both_engines(trained, engine) -> None:
    _, directory, x = trained
    record = _records(x, 1)[0]

    async def scenario():
        server = await _ready(directory, **engine)
        assert server.model.engine == ("scikit-learn" if engine else "onnxruntime")
        return [await _call(server, "POST", "/invocations", _with(record, "monthly_charges", literal))
                for literal, _ in NON_FINITE]

    for (literal, message), (status, body, _) in zip(NON_FINITE, _run(scenario()), strict=True):
        error = json.loads(body)
        assert status == 400 and error["error_code"] == "BAD_REQUEST", literal
        assert error["message"].startswith("column 'monthly_charges', row 1: ") and message in error["message"], \
            (literal, error)


def test_nan_null_and_empty_cells_are_missing_values_as_in_training(trained) -> None:
    model, directory, x = trained
    record = _records(x, 1)[0]
    missing = x.head(1).copy()
    missing["monthly_charges"] = np.nan
    missing["contract"] = np.nan
    expected = model.predict_proba(missing)[0].tolist()
    csv_row = ",".join("" if c in ("monthly_charges", "contract") else str(record[c]) for c in FEATURES)
    bodies = [
        (_with({**record, "contract": None}, "monthly_charges", "NaN"), "application/json"),
        (_post([{**record, "monthly_charges": None, "contract": None}]), "application/json"),
        (_post([{**record, "monthly_charges": "nan", "contract": ""}]), "application/json"),
        (csv_row.encode(), "text/csv"),
    ]

    for engine in ENGINES:
        async def scenario(engine=engine):
            server = await _ready(directory, **engine)
            return [await _call(server, "POST", "/invocations", body, kind) for body, kind in bodies]

        for status, body, _ in _run(scenario()):
            assert status == 200, body
            assert np.allclose(json.loads(body)["probabilities"][0], expected, atol=1e-5)


@pytest.mark.parametrize("engine", ENGINES, ids=["compiled", "sklearn"])
def test_a_bad_request_never_changes_the_answer_of_others_batched_with_it(trained, engine) -> None:
    """Good, bad and good requests in one batch: each good one gets its answer alone. 1e300 for the
    0/1 column passes the float64 check, but scaled it leaves float32, which scikit-learn refuses."""
    _, directory, x = trained
    rows = _records(x, 3)
    good = [_post([rows[0]]), _post([rows[2]])]
    refused = _post([{**rows[1], "senior_citizen": 1e300}])
    non_finite = _with(rows[1], "tenure_months", "1e400")

    async def scenario():
        server = await _ready(directory, **engine)
        alone = [await _call(server, "POST", "/invocations", body) for body in good]
        calls: list[int] = []
        predict = server.batcher.predict
        server.batcher.predict = lambda rows: (calls.append(len(rows)), predict(rows))[1]
        together = []
        for bad in (refused, non_finite):
            together.append(await asyncio.gather(*(_call(server, "POST", "/invocations", body)
                                                   for body in (good[0], bad, good[1]))))
        return alone, together, calls

    alone, together, calls = _run(scenario())
    # the model refused the joined batch of 3, then each request alone; the non-finite one never reached it
    assert calls == [3, 1, 1, 1, 2]
    for first, bad, second in together:
        assert (first[0], first[1]) == (alone[0][0], alone[0][1])
        assert (second[0], second[1]) == (alone[1][0], alone[1][1])
        assert bad[0] == 400
    assert "the model could not score the input" in json.loads(together[0][1][1])["message"]


BAD = [
    (b'{"inputs": ' + b"[" * 100_000, "application/json", "nested too deeply"),
    (b'{"dataframe_split": {"columns": null, "data": [[1]]}}', "application/json", "'columns' must be a list"),
    (b'{"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}', "application/json", "names must be strings"),
    (b'{"dataframe_split": {"columns": ["a"], "data": null}}', "application/json", "dataframe_split needs 'data'"),
    (b'{"dataframe_records": [{"tenure_months": 1, "tenure_months": 2}]}', "application/json", "duplicate key"),
    (b'{"dataframe_records": [7]}', "application/json", "row 1: expected an object or a list"),
    (json.dumps({"inputs": dict.fromkeys(FEATURES, 3)}).encode(), "application/json", "every column needs a list"),
    (b"null", "application/json", "exactly one of"),
    (b'{"instances": [[1, 2, 3]]}', "application/json", "row 1 has 3 values; the model takes 9"),
    (b"\xff\xfe{", "application/json", "malformed JSON"),
    (b"\xc3\x28,1", "text/csv", "not utf-8"),
    (b'"unterminated\n', "text/csv", "CSV row 1 has 1 fields"),
    (b"a,b\n", "text/csv; charset=klingon", "unsupported charset 'klingon'"),
    (b"a,b\n", "text/csv; charset=rot13", "unsupported charset 'rot13'"),
    (b"a,b\n", "application/jsonlines; charset=zlib", "unsupported charset 'zlib'"),
    (b'[1, 2, 3, 4, 5, "a", "b", "c", "d"]\n{', "application/jsonlines", "malformed JSON on line 2"),
    (b"1,2", "application/x-www-form-urlencoded", "unsupported content type"),
]


def test_malformed_bodies_are_4xx_naming_the_problem_and_the_server_keeps_serving(trained) -> None:
    _, directory, x = trained

    async def scenario():
        server = await _ready(directory)
        answers = [await _call(server, "POST", "/invocations", body, kind) for body, kind, _ in BAD]
        return answers, await _call(server, "POST", "/invocations", _post(_records(x, 1)))

    answers, after = _run(scenario())
    for (body, _, message), (status, answer, content) in zip(BAD, answers, strict=True):
        error = json.loads(answer)
        assert 400 <= status < 500 and content == "application/json", (body[:40], status)
        assert message.lower() in error["message"].lower(), (body[:40], error)
        assert error["error_code"] == "BAD_REQUEST"
    assert answers[-1][0] == 415
    assert after[0] == 200


def test_csv_with_a_header_maps_columns_by_name_with_or_without_a_byte_order_mark(trained) -> None:
    model, directory, x = trained
    expected = model.predict(x.head(4)).tolist()
    shuffled = x.head(4)[list(reversed(FEATURES))]
    bodies = {
        "header, reordered": shuffled.to_csv(index=False).encode(),
        "header, BOM (Excel)": shuffled.to_csv(index=False).encode("utf-8-sig"),
        "no header": x.head(4).to_csv(index=False, header=False).encode(),
        "CRLF": x.head(4).to_csv(index=False, lineterminator="\r\n").encode(),
    }
    duplicate = (",".join([*FEATURES, "contract"]) + "\n" + x.head(1).to_csv(index=False, header=False).strip()
                 + ",Two year\n").encode()
    partial = shuffled.drop(columns=["contract"]).to_csv(index=False).encode()

    async def scenario():
        server = await _ready(directory)
        got = {name: await _call(server, "POST", "/invocations", body, "text/csv") for name, body in bodies.items()}
        return got, [await _call(server, "POST", "/invocations", body, "text/csv") for body in (duplicate, partial)]

    got, (dup, missing) = _run(scenario())
    for name, (status, body, _) in got.items():
        assert status == 200 and json.loads(body)["predictions"] == expected, name
    assert dup[0] == 400 and json.loads(dup[1])["message"] == "duplicate column 'contract'"
    assert missing[0] == 400 and json.loads(missing[1])["message"].startswith("missing column 'contract'")


def test_duplicate_columns_in_dataframe_split_are_refused(trained) -> None:
    _, directory, x = trained
    row = [_records(x, 1)[0][c] for c in FEATURES]
    body = json.dumps({"dataframe_split": {"columns": [*FEATURES, "contract"], "data": [[*row, "x"]]}}).encode()

    async def scenario():
        return await _call(await _ready(directory), "POST", "/invocations", body)

    status, answer, _ = _run(scenario())
    assert status == 400 and json.loads(answer)["message"] == "duplicate column 'contract'"


def test_json_booleans_and_numbers_for_categorical_columns_follow_the_training_convention() -> None:
    """Training stores a Parquet bool category as "True"/"False", an int as str(int), a float as
    Python prints it; a JSON true, 3 or 1.5 for that column must reach the model as the same text."""
    columns = [Column("flag", "string"), Column("n", "double")]
    rows = parse(b'{"instances": [{"flag": true, "n": 1}, {"flag": 3, "n": 2}, {"flag": 1.5, "n": 3}, '
                 b'{"flag": 2.0, "n": 4}, {"flag": null, "n": 5}, {"flag": "x", "n": 6}]}', "application/json",
                 columns)
    assert [r[0] for r in rows[:4]] == ["True", "3", "1.5", "2.0"]
    assert np.isnan(rows[4][0]) and rows[5][0] == "x"


def test_a_model_trained_on_a_boolean_category_serves_json_booleans(tmp_path: Path) -> None:
    import mlflow
    from mlflow.models import infer_signature

    from training.data import generate_churn, validate
    from training.model import build_pipeline
    from training.train import trusted_types

    raw = generate_churn(600, seed=3)
    raw["paperless_billing"] = raw["paperless_billing"].map({"Yes": True, "No": False})  # as Parquet stores it
    frame = validate(raw, CONFIG, "parquet")
    x = frame[FEATURES]
    assert set(x["paperless_billing"].dropna()) == {"True", "False"}
    model = build_pipeline(CONFIG, {"n_estimators": 10}).fit(x, frame[CONFIG.target])
    mlflow.sklearn.save_model(model, tmp_path / "m", signature=infer_signature(x.head(5)), input_example=x.head(5),
                              skops_trusted_types=trusted_types(model))
    records = json.loads(x.head(20).to_json(orient="records"))
    for record in records:
        record["paperless_billing"] = record["paperless_billing"] == "True"  # the client sends JSON booleans

    async def scenario():
        server = await _ready(tmp_path / "m")
        return server.model.engine, await _call(server, "POST", "/invocations", _post(records))

    engine, (status, body, _) = _run(scenario())
    assert engine == "onnxruntime"
    assert status == 200 and json.loads(body)["predictions"] == model.predict(x.head(20)).tolist()


def test_an_older_model_with_a_non_string_example_still_starts(trained, tmp_path: Path) -> None:
    """An input example that does not fit the signature is skipped: the warm-up uses a synthetic row."""
    import shutil

    _, directory, x = trained
    copy = tmp_path / "model"
    shutil.copytree(directory, copy)
    example = json.loads((copy / "input_example.json").read_text())
    example["data"][0][FEATURES.index("contract")] = {"not": "a category"}
    (copy / "input_example.json").write_text(json.dumps(example))

    async def scenario():
        server = await _ready(copy)
        return server, await _call(server, "GET", "/ping"), await _call(server, "POST", "/invocations",
                                                                        _post(_records(x, 1)))

    server, ping, scored = _run(scenario())
    assert server.model.example is None
    assert ping[0] == 200 and scored[0] == 200


def test_parse_keeps_the_signature_the_drift_job_uses() -> None:
    columns = [Column("a", "double"), Column("b", "string")]
    assert parse(b"b,a\nx,1\n", "text/csv", columns) == [[1.0, "x"]]
    assert parse(b'{"a": 2, "b": "y"}\n', "application/jsonlines", columns) == [[2.0, "y"]]
    frame = pd.DataFrame(parse(b'{"inputs": {"a": [3], "b": ["z"]}}', "application/json", columns))
    assert frame.values.tolist() == [[3.0, "z"]]


def test_an_older_model_trained_on_raw_booleans_still_serves_them(tmp_path: Path) -> None:
    """Before training cast categories to text, a Parquet bool column reached the pipeline as bools
    and the signature said `boolean`: such a model starts, compiles and scores JSON booleans."""
    import mlflow
    from mlflow.models import infer_signature

    from training.data import generate_churn
    from training.model import build_pipeline
    from training.train import trusted_types

    raw = generate_churn(600, seed=4)
    x = raw[FEATURES].copy()
    for column in CONFIG.numeric:
        x[column] = x[column].astype("float64")
    for column in CONFIG.categorical:
        x[column] = x[column].astype(object).where(x[column].notna(), np.nan)
    x["paperless_billing"] = raw["paperless_billing"].map({"Yes": True, "No": False}).astype(object)
    model = build_pipeline(CONFIG, {"n_estimators": 10}).fit(x, raw[CONFIG.target])
    signature = infer_signature(x.head(5))
    assert {c.name: c.type.name for c in signature.inputs.inputs}["paperless_billing"] == "boolean"
    mlflow.sklearn.save_model(model, tmp_path / "m", signature=signature, input_example=x.head(5),
                              skops_trusted_types=trusted_types(model))
    records = json.loads(x.head(20).to_json(orient="records"))

    async def scenario():
        server = await _ready(tmp_path / "m")
        return server.model, await _call(server, "POST", "/invocations", _post(records))

    loaded, (status, body, _) = _run(scenario())
    assert loaded.example is not None and loaded.engine == "onnxruntime"
    assert status == 200 and json.loads(body)["predictions"] == model.predict(x.head(20)).tolist()


FAST_COLUMNS = [Column("a", "double"), Column("b", "string"), Column("c", "long"), Column("d", "boolean")]
FAST_BODIES = [
    b'{"dataframe_records": [{"a": 1.5, "b": "x", "c": 2, "d": true}]}',
    b'{"instances": [{"a": 1.5, "b": "x", "c": 2, "d": "false"}, {"a": NaN, "b": "", "c": null, "d": null}]}',
    b'{"inputs": [{"a": 1e400, "b": "x", "c": 2, "d": true}]}',  # non-finite
    b'{"dataframe_records": [{"a": Infinity, "b": "x", "c": 2, "d": true}]}',
    b'{"dataframe_records": [{"a": 1.5, "b": true, "c": 2.5, "d": true}]}',  # True -> "True", 2.5 for a long
    b'{"dataframe_records": [{"a": 1.5, "a": 2.5, "b": "x", "c": 2, "d": true}]}',  # repeated key
    b'{"dataframe_records": [{"a": 1.5, "b": "x:y", "c": 2, "d": true, "d": false}]}',  # colon in a string too
    b'{"dataframe_records": [{"a": 1, "b": "x", "c": 2, "d": true}], "dataframe_records": []}',
    b'{"dataframe_records": [{"a": {"k": 1, "k": 2}, "b": "x", "c": 2, "d": true}]}',  # nested, repeated
    b'{"dataframe_records": [{"a": [1], "b": "x", "c": 2, "d": true}]}',
    b'{"dataframe_records": [{"b": "x", "a": 1.5, "c": 2, "d": true}]}',  # another order: mapped by name
    b'{"dataframe_records": [{"a": 1.5, "b": "x", "c": 2}]}',  # missing column
    b'{"dataframe_records": [{"a": "1.5", "b": 3, "c": "x", "d": 1}, {"a": 1.5, "b": "y", "c": 2, "e": 1}]}',
    b'{"dataframe_records": []}',
    b'{"dataframe_records": [[1.5, "x", 2, true]]}',
    b'{"dataframe_records": [{"a": 1.5, "b": "x", "c": 2, "d": true}]',  # malformed
    b'{"dataframe_records": [{"a": 1.5, "b": "x", "c": ' + b"9" * 5000 + b', "d": true}]}',  # beyond int digits
    '{"dataframe_records": [{"a": 1.5, "b": "\u00e9\u3a00", "c": 2, "d": true}]}'.encode("utf-16"),
    b'\xef\xbb\xbf{"dataframe_records": [{"a": 1.5, "b": "x", "c": 2, "d": true}]}',
    b'{"dataframe_records": [{"a": 1.5, "b": "\xff", "c": 2, "d": true}]}',  # not UTF-8
]


def _outcome(body: bytes, columns: list[Column]) -> tuple[str, object]:
    from serving.formats import ClientError

    try:
        return "rows", repr(parse(body, "application/json", columns))  # repr: NaN == NaN
    except ClientError as exc:
        return f"{exc.status}", exc.message


@pytest.mark.parametrize("body", FAST_BODIES)
def test_the_fast_json_path_reads_every_body_as_the_full_path_does(body: bytes, monkeypatch) -> None:
    """Small dataframe_records bodies take a fast path (plain C decode, repeated keys ruled out by a
    colon count): rows, or the error and its message, must be exactly those of the full path."""
    from serving import formats

    fast = _outcome(body, FAST_COLUMNS)
    monkeypatch.setattr(formats, "FAST_BYTES", -1)  # every body the full way
    assert fast == _outcome(body, FAST_COLUMNS)


def test_deadlines_cancel_only_late_tasks_and_tell_their_own_cancellation_apart() -> None:
    from serving.app import Deadlines

    async def scenario():
        deadlines = Deadlines(0.05)
        outcomes: dict[str, object] = {}

        async def request(name: str, seconds: float) -> None:
            task = asyncio.current_task()
            assert task is not None
            deadlines.start(task)
            expired = False
            try:
                try:
                    await asyncio.sleep(seconds)
                finally:
                    expired = deadlines.finish(task)
                outcomes[name] = "done"
            except asyncio.CancelledError:
                outcomes[name] = "timeout" if expired else "cancelled"
                if not expired:
                    raise

        fast = [asyncio.create_task(request(f"fast{i}", 0.001)) for i in range(50)]
        slow = asyncio.create_task(request("slow", 1))
        other = asyncio.create_task(request("other", 1))
        await asyncio.sleep(0.01)
        other.cancel()  # someone else's cancellation: not a timeout, and it propagates
        await asyncio.gather(*fast, slow, return_exceptions=True)
        assert other.cancelled()
        later = asyncio.create_task(request("later", 0.001))  # the timer re-arms for new requests
        late = asyncio.create_task(request("late", 1))
        await asyncio.gather(later, late)
        return outcomes, deadlines.active, deadlines.fired

    outcomes, active, fired = _run(scenario())
    assert outcomes == {**{f"fast{i}": "done" for i in range(50)}, "slow": "timeout", "other": "cancelled",
                        "later": "done", "late": "timeout"}
    assert not active and not fired


def test_the_fast_json_path_takes_the_common_body_and_leaves_repeated_keys_to_the_full_path() -> None:
    from serving import formats

    assert formats._fast_records(FAST_BODIES[0], FAST_COLUMNS) is not None
    assert formats._fast_records(FAST_BODIES[1], FAST_COLUMNS) is not None
    for repeated in FAST_BODIES[5:9]:
        assert formats._fast_records(repeated, FAST_COLUMNS) is None
