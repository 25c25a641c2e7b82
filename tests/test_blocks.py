"""A block is never written as an attribute: zero blocks render as nothing in both writers, and
`validate --schema` flags a block type given as `[]` or `{}` (review A6: `email_receiver = []`)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from mlops_dsl import bindings
from mlops_dsl.terraform import Block, Blocks, Resource, Stack, blocks, render
from mlops_dsl.validate import validate

needs_bindings = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in bindings.PACKAGES.values()),
    reason="the cdktn provider bindings are not installed (pip install '.[cdktn]')")


def _group(receivers: object) -> Stack:
    stack = Stack("serving")
    stack.add(Resource("azurerm_monitor_action_group", "alerts", {
        "name": "ag-alerts",
        "email_receiver": receivers,
        "resource_group_name": "rg",
        "short_name": "alerts",
    }))
    return stack


def _receiver(i: int) -> Block:
    return Block({"name": f"email-{i}", "email_address": f"ops{i}@example.com"})


def test_zero_blocks_render_as_no_block_in_hcl() -> None:
    text = render(_group(blocks(_receiver(i) for i in range(0))), "hcl")["main.tf"]
    assert "email_receiver" not in text
    # nothing stands between the assignments, so they stay one aligned run, as `terraform fmt` wants
    assert ('  name                = "ag-alerts"\n  resource_group_name = "rg"\n'
            '  short_name          = "alerts"\n') in text


def test_zero_blocks_render_as_no_key_in_json() -> None:
    doc = json.loads(render(_group(blocks()), "json")["main.tf.json"])
    assert doc["resource"]["azurerm_monitor_action_group"]["alerts"] == {
        "name": "ag-alerts", "resource_group_name": "rg", "short_name": "alerts"}


def test_some_blocks_render_as_repeated_blocks_in_both_writers() -> None:
    stack = _group(blocks([_receiver(0), _receiver(1)]))
    text = render(stack, "hcl")["main.tf"]
    assert text.count("  email_receiver {\n") == 2
    assert "email_receiver =" not in text
    doc = json.loads(render(stack, "json")["main.tf.json"])
    assert doc["resource"]["azurerm_monitor_action_group"]["alerts"]["email_receiver"] == [
        {"name": "email-0", "email_address": "ops0@example.com"},
        {"name": "email-1", "email_address": "ops1@example.com"}]


def test_a_plain_empty_list_stays_the_literal_it_is() -> None:
    # the writer cannot know `[]` meant blocks (`subresource_names = []` is an argument): validate says so
    assert "  email_receiver      = []\n" in render(_group([]), "hcl")["main.tf"]


def test_blocks_hold_blocks_only() -> None:
    with pytest.raises(TypeError, match="Blocks holds Block values only, got dict"):
        Blocks([{"name": "x"}])  # type: ignore[list-item]


@needs_bindings
@pytest.mark.parametrize(("value", "shown"), [([], "[]"), ({}, "{}")])
def test_validate_flags_a_block_type_given_as_an_empty_argument(value: object, shown: str) -> None:
    problems = validate([("ns/p/serving", _group(value))], schema=True).problems
    assert problems == [
        f"ns/p/serving: azurerm_monitor_action_group.alerts: email_receiver: is a block type in "
        f"MonitorActionGroupConfig, given as the argument `email_receiver = {shown}`, which Terraform rejects; for "
        f"no blocks leave it out (or give blocks(), which renders nothing)"]


@needs_bindings
def test_validate_accepts_zero_blocks_and_checks_the_blocks_given() -> None:
    assert validate([("ns/p/serving", _group(blocks()))], schema=True).problems == []
    misspelt = Block({"name": "email-0", "email_adress": "ops@example.com"})
    problems = validate([("ns/p/serving", _group(blocks([misspelt])))], schema=True).problems
    assert problems[0].startswith("ns/p/serving: azurerm_monitor_action_group.alerts: email_receiver.email_adress: "
                                  "no such argument or block in ")
    assert "did you mean 'email_address'?" in problems[0]
