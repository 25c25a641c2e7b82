"""Every declared constraint is exercised: invalid values generated from each template's table are
rejected with the one message shape, naming the template, field and value."""

from __future__ import annotations

import pytest

from mlops_dsl import DataInfrastructure, ParameterError
from mlops_dsl.templates.base import Template

TEMPLATES: list[type[Template]] = [DataInfrastructure]

CASES = [
    (cls, field, bad)
    for cls in TEMPLATES
    for field, constraints in cls._parameter_constraints.items()
    for bad in constraints[0].invalid_examples()
    if not any(c.is_satisfied_by(bad) for c in constraints)
]


def test_every_template_validates_every_field() -> None:
    for cls in TEMPLATES:
        fields = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        assert fields == set(cls._parameter_constraints), cls


@pytest.mark.parametrize(("cls", "field", "bad"), CASES, ids=lambda v: repr(v)[:30])
def test_invalid_value_is_rejected_naming_template_field_and_value(cls, field, bad) -> None:
    with pytest.raises(ParameterError) as err:
        cls(**{field: bad})
    message = err.value.problems[0]
    assert message.startswith(f"The '{field}' parameter of {cls.__name__} '")
    assert message.endswith(f"Got {bad!r} instead.")


def test_defaults_are_valid_and_all_problems_are_collected() -> None:
    DataInfrastructure()
    with pytest.raises(ParameterError) as err:
        DataInfrastructure(zones=[], abort_multipart_days=0, key_deletion_window_days=90)
    assert len(err.value.problems) == 3


def test_duplicate_zones_are_rejected() -> None:
    with pytest.raises(ParameterError, match="unique items"):
        DataInfrastructure(zones=["raw", "raw"])
