"""Property: no body, content type or header a client sends makes the server answer 5xx, every
4xx is MLflow's JSON error body, and a good request right after is still answered 200."""

from __future__ import annotations

import asyncio
import encodings.aliases
import json
import re
import string

import pytest

pytest.importorskip("mlflow", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")
hypothesis = pytest.importorskip("hypothesis", reason="the dev extra is not installed")

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .test_serving import CONFIG, FEATURES, _ready, _records, save_trained  # noqa: E402
from .test_serving_contract import _raw  # noqa: E402

NAMES = st.sampled_from([*FEATURES, "", "extra", "\ufeff" + FEATURES[0], FEATURES[0].upper()])
CELLS = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400), st.text(max_size=12),
    st.sampled_from(["inf", "-Infinity", "nan", "1e999", "", "1_000", "True", "Month-to-month"]),
)
JSON = st.recursive(CELLS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
                    max_leaves=20)
RECORD = st.dictionaries(NAMES, CELLS, min_size=0, max_size=11) | st.lists(CELLS, min_size=0, max_size=11)
FORMATS = st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "columns", "params"])


@st.composite
def mlflow_documents(draw) -> bytes:
    key = draw(FORMATS)
    if key == "dataframe_split":
        payload: object = {"columns": draw(st.none() | st.lists(NAMES, max_size=11)),
                           "data": draw(st.lists(st.lists(CELLS, max_size=11), max_size=4) | JSON)}
    else:
        payload = draw(st.lists(RECORD, max_size=4) | JSON | st.dictionaries(NAMES, st.lists(CELLS, max_size=3)))
    doc = {key: payload, **draw(st.dictionaries(FORMATS, JSON, max_size=1))}
    return json.dumps(doc, allow_nan=True).encode(draw(st.sampled_from(["utf-8", "utf-16", "utf-8-sig"])))


@st.composite
def csv_bodies(draw) -> bytes:
    cell = st.one_of(st.text(string.printable, max_size=8), st.sampled_from(["inf", "1e400", "", '"', "nan"]),
                     st.floats().map(repr))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=11), max_size=5))
    if draw(st.booleans()):
        rows.insert(0, draw(st.permutations(FEATURES)) + draw(st.lists(NAMES, max_size=1)))
    text = "\n".join(",".join(r) for r in rows)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])), errors="replace")


BASE = {**dict.fromkeys(CONFIG.numeric, 1.0), **dict.fromkeys(CONFIG.categorical, "Month-to-month")}


@st.composite
def near_valid(draw) -> bytes:
    """A good record with a few cells replaced: the path through the model, not only the parser."""
    record = dict(BASE)
    for name in draw(st.lists(st.sampled_from(FEATURES), max_size=3)):
        record[name] = draw(CELLS)
    key = draw(st.sampled_from(["dataframe_records", "instances"]))
    return json.dumps({key: [record] * draw(st.integers(1, 3))}, allow_nan=True).encode()


BODIES = st.one_of(
    near_valid(), near_valid(),
    st.binary(max_size=300), mlflow_documents(), csv_bodies(),
    st.lists(RECORD, max_size=4).map(lambda rs: "\n".join(json.dumps(r) for r in rs).encode()),
    st.integers(1, 3000).map(lambda n: b'{"inputs": ' + b"[" * n),
    st.integers(1, 3000).map(lambda n: b'{"instances": [' + b'{"a": ' * n),
)
# every charset Python knows, and codecs that are not charsets (rot13 maps str to str, zlib bytes to bytes)
CHARSETS = [*sorted(set(encodings.aliases.aliases.values())), "rot13", "base64", "hex", "zlib", "undefined"]
CONTENT_TYPES = st.one_of(
    st.just("application/json"), st.just("application/json"), st.just("text/csv"),
    st.sampled_from(["application/json", "text/csv", "application/jsonlines", "application/json; charset=utf-16",
                     "text/csv; charset=latin-1", "text/csv; charset=nope", "TEXT/CSV", "", "text/plain",
                     "application/x-jsonlines", "multipart/form-data; boundary=x"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
    st.tuples(st.sampled_from(["text/csv", "application/jsonlines"]), st.sampled_from(CHARSETS))
    .map(lambda pair: f"{pair[0]}; charset={pair[1]}"),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
HEADERS = st.fixed_dictionaries({}, optional={
    b"accept": st.one_of(HEADER_TEXT, st.sampled_from(["text/csv;q=abc", "*/*;q=0", "application/jsonlines",
                                                       "text/csv, application/json;q=nan"])),
    b"content-length": st.one_of(st.sampled_from(["abc", "-1", "99999999999", "1e3", ""]), HEADER_TEXT),
    b"x-request-id": HEADER_TEXT,
})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """One server on one event loop for every generated request, as in production."""
    _, directory, x = save_trained(tmp_path_factory.mktemp("model") / "model")
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(_ready(directory))
    good = json.dumps({"dataframe_records": _records(x, 1)}).encode()
    yield loop, server, good
    loop.run_until_complete(server.batcher.stop())
    loop.close()


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=BODIES, content_type=CONTENT_TYPES, headers=HEADERS)
def test_no_client_input_is_a_5xx_and_the_server_keeps_serving(served, body: bytes, content_type: str,
                                                               headers: dict[bytes, str]) -> None:
    loop, server, good = served
    sent = [(b"content-type", content_type.encode("latin-1"))] + [(k, v.encode("latin-1")) for k, v in headers.items()]
    status, answer_headers, answer = loop.run_until_complete(_raw(server, "POST", "/invocations", body, sent))
    event(f"status {status}")  # --hypothesis-show-statistics: the mix of answers
    assert status < 500, (status, answer[:300])
    for name, value in answer_headers.items():  # what uvicorn would refuse to send (and answer 500 for)
        assert not re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value), (name, value)
    if status >= 400:
        error = json.loads(answer)
        assert set(error) == {"error_code", "message"} and error["message"], error
        assert answer_headers[b"content-type"] == b"application/json"
    after = loop.run_until_complete(_raw(server, "POST", "/invocations", good,
                                         [(b"content-type", b"application/json")]))
    assert after[0] == 200


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory: pytest.TempPathFactory):
    """The compiled path and scikit-learn serving the same model, on one event loop."""
    _, directory, x = save_trained(tmp_path_factory.mktemp("model") / "model")
    loop = asyncio.new_event_loop()
    compiled = loop.run_until_complete(_ready(directory))
    sklearn = loop.run_until_complete(_ready(directory, SERVING_ENGINE="sklearn"))
    assert (compiled.model.engine, sklearn.model.engine) == ("onnxruntime", "scikit-learn")
    categories = {c: sorted(x[c].dropna().unique().tolist()) for c in CONFIG.categorical}
    yield loop, compiled, sklearn, categories
    for server in (compiled, sklearn):
        loop.run_until_complete(server.batcher.stop())
    loop.close()


NUMBERS = st.one_of(*[st.floats(-1e4, 1e4)] * 12,
                    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**320), 10**320),
                    st.sampled_from([1e39, -1e39, 3.4e38, 1e300, 0.0, None, "", "nan", "12.5"]))


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_both_engines_give_the_same_answer_for_every_input(both_engines, data) -> None:
    loop, compiled, sklearn, categories = both_engines
    record = {c: data.draw(NUMBERS) for c in CONFIG.numeric}
    for column, known in categories.items():
        record[column] = data.draw(st.one_of(st.sampled_from(known), st.none(), st.booleans(), st.integers(),
                                             st.floats(), st.text(max_size=5)))
    body = json.dumps({"dataframe_records": [record]}, allow_nan=True).encode()
    headers = [(b"content-type", b"application/json")]
    fast = loop.run_until_complete(_raw(compiled, "POST", "/invocations", body, headers))
    exact = loop.run_until_complete(_raw(sklearn, "POST", "/invocations", body, headers))
    event(f"status {exact[0]}")
    assert fast[0] == exact[0], (record, fast[2], exact[2])
    if exact[0] == 200:
        a, b = json.loads(fast[2]), json.loads(exact[2])
        assert a["predictions"] == b["predictions"], record
        assert max(abs(p - q) for p, q in zip(a["probabilities"][0], b["probabilities"][0], strict=True)) < 1e-5
    else:
        assert json.loads(fast[2]) == json.loads(exact[2])
