"""A compiled inference path: numpy preprocessing plus ONNX Runtime for the classifier.

scikit-learn's per-call overhead (column selection, validation, one process-wide joblib setup per
tree ensemble call) costs milliseconds even for one row. For the pipeline shape training builds
(median impute + scale for numbers, most-frequent impute + one-hot for categories, then a
classifier), the fitted parameters are read into a few numpy operations, and the classifier is
converted with skl2onnx. The result is checked against the scikit-learn pipeline on real and
edge-case rows; any other shape, a failed conversion or a mismatch leaves scikit-learn in charge.
"""

from __future__ import annotations

import math
import operator
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .formats import NUMERIC, Column

TOLERANCE = 1e-5  # probabilities: float32 trees in ONNX vs float64 sums in scikit-learn
# Rows whose two most likely classes are this close are decided by scikit-learn itself: at an exact
# tie (common with few trees) float32 and float64 sums fall on different sides.
TIE = 1e-5


FLOAT32_MAX = float(np.finfo(np.float32).max)


class Unsupported(Exception):
    """The model is not of a shape this path compiles; scikit-learn serves it."""


class InputRejected(ValueError):
    """scikit-learn itself refused rows this path handed to it: the client's input, not a failure here."""


@dataclass
class _Categorical:
    fill: str
    index: dict[str, int]
    offset: int


class CompiledPipeline:
    def __init__(self, pipeline: Any, columns: list[Column]):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["preprocess", "classifier"]:
            raise Unsupported("not a preprocess + classifier pipeline")
        pre = pipeline.named_steps["preprocess"]
        if not isinstance(pre, ColumnTransformer) or pre.remainder != "drop":
            raise Unsupported("preprocessing is not a ColumnTransformer that drops the rest")
        position = {c.name: i for i, c in enumerate(columns)}
        self.width = 0
        self.numeric_idx: list[int] = []
        self.categorical: list[tuple[int, _Categorical]] = []
        for name, steps, cols in pre.transformers_:
            if name == "remainder":
                continue
            kinds = [type(s) for _, s in steps.steps] if isinstance(steps, Pipeline) else []
            if kinds == [SimpleImputer, StandardScaler]:
                imputer, scaler = steps.steps[0][1], steps.steps[1][1]
                self.numeric_idx = [position[c] for c in cols]
                self.medians = imputer.statistics_.astype(np.float64)
                self.mean = scaler.mean_ if scaler.with_mean else np.zeros(len(cols))
                self.scale = scaler.scale_ if scaler.with_std else np.ones(len(cols))
                self.width += len(cols)
            elif kinds == [SimpleImputer, OneHotEncoder]:
                imputer, encoder = steps.steps[0][1], steps.steps[1][1]
                if encoder.handle_unknown != "ignore" or encoder.drop is not None:
                    raise Unsupported("one-hot encoder must ignore unknown categories and drop none")
                for j, column in enumerate(cols):
                    categories = [str(v) for v in encoder.categories_[j]]
                    self.categorical.append((position[column], _Categorical(
                        str(imputer.statistics_[j]), {v: k for k, v in enumerate(categories)}, self.width)))
                    self.width += len(categories)
            else:
                raise Unsupported(f"transformer {name!r} is {kinds}")
        if self.numeric_idx and self.categorical and self.categorical[0][1].offset != len(self.numeric_idx):
            raise Unsupported("numeric features must come first")
        self.numeric_types = all(columns[i].type in NUMERIC for i in self.numeric_idx)
        # the numeric cells of a row as one tuple (itemgetter of one index would give a scalar)
        self._pick = operator.itemgetter(*self.numeric_idx) if len(self.numeric_idx) > 1 else None
        self.session, self.output = self._convert(pipeline.named_steps["classifier"])
        self.classes = pipeline.named_steps["classifier"].classes_
        self.exact: Any = None  # scikit-learn's predict, for near-ties

    def _convert(self, classifier: Any) -> tuple[Any, str]:
        import onnxruntime as rt
        from skl2onnx import to_onnx

        try:
            sample = np.zeros((1, self.width), dtype=np.float32)
            onx = to_onnx(classifier, sample, options={id(classifier): {"zipmap": False}}, target_opset=17)
        except Exception as exc:
            raise Unsupported(f"skl2onnx cannot convert {type(classifier).__name__}: {exc}") from None
        options = rt.SessionOptions()
        options.intra_op_num_threads = 1  # one worker; the event loop needs the other core
        session = rt.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.input = session.get_inputs()[0].name
        output = session.get_outputs()[1].name
        # InferenceSession.run checks, on every call, what is fixed here (the one input is fed, by
        # name, as a numpy array, on the CPU provider: no graph capture, no fallback to take), then
        # calls the native session: 5 us of a 1-row request. The native call is used directly;
        # an onnxruntime without it keeps the checked call.
        native = getattr(session, "_sess", None)
        self._outputs = [output]
        self._run = native.run if native is not None and hasattr(native, "run") else session.run
        return session, output

    def transform(self, rows: list[list[Any]]) -> np.ndarray:
        """The preprocessed feature matrix. For the few rows of a request numpy's per-call cost, not
        the arithmetic, is the price: the numbers go in one array, and the one-hot cells are
        gathered as flat positions and set by one indexed assignment rather than one per cell."""
        width = self.width
        out = np.zeros((len(rows), width), dtype=np.float64)
        if self.numeric_idx:
            pick = self._pick
            numbers = np.array([pick(row) for row in rows] if pick is not None else
                               [[row[i] for i in self.numeric_idx] for row in rows], dtype=np.float64)
            np.copyto(numbers, self.medians, where=np.isnan(numbers))  # in place: no temporaries per step
            scaled = out[:, : len(self.numeric_idx)]
            np.subtract(numbers, self.mean, out=scaled)
            np.divide(scaled, self.scale, out=scaled)
        if self.categorical:
            hot = []
            for r, row in enumerate(rows):
                start = r * width
                for i, cat in self.categorical:
                    value = row[i]
                    if type(value) is not str or not value:
                        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
                            value = cat.fill
                        elif not isinstance(value, str):
                            value = str(value)  # bool columns of older models
                    k = cat.index.get(value)
                    if k is not None:
                        hot.append(start + cat.offset + k)
            if hot:
                out.reshape(-1)[hot] = 1.0  # a view: `out` is C-contiguous
        return out

    def predict(self, rows: list[list[Any]]) -> tuple[np.ndarray, np.ndarray]:
        features = self.transform(rows)
        # A scaled feature beyond float32's range would be inf in ONNX; scikit-learn refuses it. Such
        # rows go to scikit-learn, so both engines give the same answer (its error) for them.
        wide = None
        if features.size and np.abs(features).max() > FLOAT32_MAX:
            wide = ~(np.abs(features) <= FLOAT32_MAX).all(axis=1)
            features = np.where(wide[:, None], 0.0, features)
        probabilities = self._run(self._outputs, {self.input: features.astype(np.float32)}, None)[0]
        probabilities = probabilities.astype(np.float64)
        labels = self.classes[probabilities.argmax(axis=1)]
        if probabilities.shape[1] == 2:
            exact = abs(probabilities[:, 1] - probabilities[:, 0]) < TIE
        elif probabilities.shape[1] > 2:
            top = np.sort(probabilities, axis=1)
            exact = top[:, -1] - top[:, -2] < TIE
        else:
            exact = np.zeros(len(rows), bool)
        if wide is not None:
            exact |= wide
        if exact.any() and self.exact is not None:
            redo = np.flatnonzero(exact)
            try:
                exact_labels, exact_probabilities = self.exact([rows[i] for i in redo])
            except Exception as exc:
                raise InputRejected(str(exc)) from exc
            labels[redo] = exact_labels
            probabilities[redo] = exact_probabilities
        return labels, probabilities


def edge_rows(columns: list[Column], example: list[list[Any]] | None) -> list[list[Any]]:
    """Rows to check the compiled path on: the input example, missing values, unseen categories."""
    rows = [list(r) for r in (example or [])]
    base = _base(columns, example)
    missing = [np.nan] * len(columns)
    unseen = [v if c.type in NUMERIC else "never-seen" for v, c in zip(base, columns, strict=True)]
    extreme = [(v * 1000 if isinstance(v, float) and not math.isnan(v) else v) for v in base]
    return [*rows, missing, unseen, extreme]


def _base(columns: list[Column], example: list[list[Any]] | None) -> list[Any]:
    return list(example[0]) if example else [0.0 if c.type in NUMERIC else "" for c in columns]


def huge_rows(columns: list[Column], example: list[list[Any]] | None) -> list[list[Any]]:
    """One number at a time beyond float32's range (+-1e39): after scaling it may fit float32 (both
    engines score it) or not (scikit-learn refuses it); either way the engines must agree."""
    base = _base(columns, example)
    return [[value if j == i else v for j, v in enumerate(base)]
            for i, c in enumerate(columns) if c.type in NUMERIC for value in (1e39, -1e39)]


def _outcome(predict: Any, row: list[Any]) -> tuple[Any, Any] | None:
    try:
        return predict([row])
    except ValueError:
        return None


def compile_verified(pipeline: Any, columns: list[Column], predict: Any,
                     example: list[list[Any]] | None) -> CompiledPipeline:
    """The compiled path, only if it gives scikit-learn's labels and probabilities on the check rows
    (and refuses exactly the rows scikit-learn refuses)."""
    compiled = CompiledPipeline(pipeline, columns)
    compiled.exact = predict
    rows = edge_rows(columns, example)
    pairs = [(predict(rows), compiled.predict(rows))]
    for row in huge_rows(columns, example):
        with warnings.catch_warnings():  # scikit-learn's "overflow encountered in cast" is the point here
            warnings.simplefilter("ignore", RuntimeWarning)
            reference, fast = _outcome(predict, row), _outcome(compiled.predict, row)
        if (reference is None) != (fast is None):
            raise Unsupported(f"scikit-learn {'refuses' if reference is None else 'scores'} {row}; the compiled "
                              "path does not")
        if reference is not None:
            pairs.append((reference, fast))
    for (labels, probabilities), (fast_labels, fast_probabilities) in pairs:
        if not np.array_equal(labels, fast_labels):
            raise Unsupported("labels differ from scikit-learn's on the check rows")
        if probabilities is not None and np.max(np.abs(probabilities - fast_probabilities)) > TOLERANCE:
            raise Unsupported("probabilities differ from scikit-learn's beyond the tolerance")
    return compiled
