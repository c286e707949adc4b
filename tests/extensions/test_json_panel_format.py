"""Our JSON panel files against Pipedrive's own: the templates and examples of
docs/json-panels-adding-a-panel and pipedrive/example-apps json-samples, kept as fixtures with their
source URLs (tests/fixtures/pipedrive_docs/json_panels/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extensions.json_panel_format import (
    DEFINITIONS,
    FIELD_TYPES,
    LABEL_COLORS,
    TEMPLATE_KEYS,
    data_structure_problems,
    error_response_problems,
    panel_data_schema,
    panel_fields,
    panel_response_problems,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipedrive_docs" / "json_panels"
OURS = ("deal", "person")


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def _all_fixtures() -> list[str]:
    return sorted(path.name for path in FIXTURES.glob("*.json"))


def test_every_fixture_names_its_source() -> None:
    names = _all_fixtures()
    assert len(names) == 17
    for name in names:
        fixture = _fixture(name)
        assert set(fixture) == {"source_url", "section", "body"}, name
        url = fixture["source_url"]
        assert url.startswith(
            ("https://pipedrive.readme.io/docs/", "https://github.com/pipedrive/example-apps/blob/")
        ), url
        if "github.com" in url:  # pinned to a commit, not a moving branch
            assert len(url.split("/blob/")[1].split("/")[0]) == 40


@pytest.mark.parametrize("name", [n for n in _all_fixtures() if n.startswith("schema-")])
def test_pipedrives_templates_pass_our_format_check(name: str) -> None:
    assert data_structure_problems(_fixture(name)["body"]) == []


@pytest.mark.parametrize("name", OURS)
def test_our_data_structures_are_in_pipedrives_template_format(name: str) -> None:
    ours = panel_data_schema(name)
    assert data_structure_problems(ours) == []
    # The same vocabulary as Pipedrive's templates: no key, and no field type, that they do not use or document.
    template = _fixture("schema-multiple-object.json")["body"]
    assert set(ours) <= TEMPLATE_KEYS and set(ours["items"]) == set(template["items"])
    assert ours["type"] == template["type"] == "array"
    assert ours["items"]["required"] == template["items"]["required"] == ["id", "header"]
    assert ours["items"]["properties"]["id"] == {
        **template["items"]["properties"]["id"],
        "label": ours["items"]["properties"]["id"]["label"],
    }
    assert ours["items"]["properties"]["header"] == template["items"]["properties"]["header"]
    for spec in ours["items"]["properties"].values():
        assert spec["$ref"].removeprefix("#/definitions/") in FIELD_TYPES


def test_the_definitions_cover_every_type_the_templates_use() -> None:
    used = set()
    for name in _all_fixtures():
        if name.startswith("schema-"):
            body = _fixture(name)["body"]
            item = body["items"] if body["type"] == "array" else body
            used |= {spec["$ref"].removeprefix("#/definitions/") for spec in item["properties"].values()}
    assert used <= set(DEFINITIONS)
    assert set(LABEL_COLORS) == {"green", "red", "blue", "yellow", "purple", "grey"}


@pytest.mark.parametrize(
    ("response", "schema"),
    [
        ("response-multiple-object.json", "schema-multiple-object.json"),
        ("response-multiple-object-empty.json", "schema-multiple-object.json"),
        ("response-single-object.json", "schema-single-object.json"),
        ("response-single-object-empty.json", "schema-single-object.json"),
        ("response-settings.json", "schema-multiple-object.json"),
        ("response-external-link.json", "schema-multiple-object.json"),
    ],
)
def test_pipedrives_example_responses_validate_against_its_templates(response: str, schema: str) -> None:
    assert panel_response_problems(_fixture(schema)["body"], _fixture(response)["body"]) == []


@pytest.mark.parametrize(
    ("name", "field_type"),
    [
        ("field-text-markdown.json", "text"),
        ("field-currency.json", "currency"),
        ("field-label.json", "label"),
        ("field-link-string.json", "link"),
        ("field-link-object.json", "link"),
        ("field-tags.json", "tags"),
    ],
)
def test_each_documented_field_example_fits_its_definition(name: str, field_type: str) -> None:
    ((key, value),) = _fixture(name)["body"].items()
    properties = {"id": {"$ref": "#/definitions/numerical"}, key: {"$ref": f"#/definitions/{field_type}"}}
    schema = {"type": "object", "properties": properties}
    assert panel_response_problems(schema, {"data": {"id": 1, key: value}}) == []
    # and not another type's: the definitions tell the types apart
    other = "numerical" if field_type != "numerical" else "text"
    properties[key] = {"$ref": f"#/definitions/{other}"}
    assert panel_response_problems(schema, {"data": {"id": 1, key: value}}) != []


def test_the_documented_error_example_is_the_error_format() -> None:
    assert error_response_problems(_fixture("error.json")["body"]) == []
    assert error_response_problems({"error": {"title": "x" * 31, "subtitle": "too long a title"}}) != []
    assert error_response_problems({"error": {"subtitle": "no title"}}) != []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"data": [{"id": "deal:1", "header": "Deal"}]}, "string id"),
        ({"data": [{"id": 1, "header": "Deal", "status": {"color": "gray", "label": "Deleted"}}]}, "gray"),
        ({"data": [{"id": 1, "header": "Deal", "surprise": "x"}]}, "undefined property"),
        ({"data": [{"id": i, "header": f"Deal {i}"} for i in range(11)]}, "11 objects"),
        ({"data": [{"id": 1, "header": "Deal", "value": {"code": "EUR"}}]}, "currency without value"),
        ({"data": [{"id": 1, "header": "Deal", "expected_close_date": "31.03.2026"}]}, "date format"),
        ({"rows": []}, "no data"),
    ],
)
def test_what_pipedrive_would_refuse_is_refused(body: dict[str, Any], why: str) -> None:
    assert panel_response_problems(panel_data_schema("deal"), body) != [], why


def test_fields_in_pipedrives_order_with_their_labels() -> None:
    fields = panel_fields(panel_data_schema("deal"))
    assert [f.key for f in fields][:3] == ["id", "value", "pipeline"]
    assert {f.key: (f.type, f.label) for f in fields}["expected_close_date"] == ("date", "Expected close date")
    template = panel_fields(_fixture("schema-single-object.json")["body"])
    assert {f.key: f.label for f in template}["delivery_cost"] == "Delivery cost"
    assert {f.key: f.label for f in template}["manufacturer"] == "Manufacturer"


def test_every_error_title_in_the_code_fits_pipedrives_30_characters() -> None:
    """Each ``json_error("<title>", ...)`` literal in extensions/ (the runtime assert covers the rest)."""
    import ast

    titles = []
    for path in (Path(__file__).resolve().parents[2] / "extensions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "json_error" and node.args:
                first = node.args[0]
                options = [first.body, first.orelse] if isinstance(first, ast.IfExp) else [first]
                for option in options:
                    assert isinstance(option, ast.Constant) and isinstance(option.value, str), f"{path.name}: literal"
                    titles.append(option.value)
    assert len(titles) >= 10
    too_long = [t for t in titles if not 0 < len(t) <= 30]
    assert too_long == []
