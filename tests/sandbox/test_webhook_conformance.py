"""Conformance: every webhook body the sandbox can emit, held to Pipedrive's documented examples.

For every entity and action the sandbox supports, both versions: the v2 body is compared with the
migration guide's example of the same entity and action (tests/fixtures/pipedrive_docs/webhooks/v2/),
every typed custom field with the guide's example of its type (``v2_custom_fields/``), and the v1 body
with the documented v1 example (``v1/deal.added.json``). A difference is a key one side has and the
other has not, or a value whose JSON type differs (``null`` is a missing value, not a type: the
documented examples print ``null`` for fields that hold values elsewhere). Lists compare their items
with the example's first item. The test prints how many bodies it compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox import services
from sandbox.facts import webhook_bodies
from sandbox.models import ChangeEvent, FieldDefinition, Organization, Person, SandboxUser, Webhook
from sandbox.webhook_sender import body_v1, body_v2

from .conftest import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=SANDBOX_DB)

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "pipedrive_docs" / "webhooks"
HASH = re.compile(r"^[0-9a-f]{40}$")
API = ChangeEvent.Source.API

# A custom field of every type the guide documents, with a value as the API would be sent it.
CUSTOM_FIELDS: dict[str, Any] = {
    "varchar": "A line of text",
    "text": "A long text",
    "varchar_auto": "Hello there",
    "double": 123.5,
    "monetary": {"value": 200, "currency": "EUR"},
    "phone": "1234-5678",
    "time": {"value": "00:45:00", "timezone_id": 310},
    "timerange": {"from": "00:00:00", "until": "01:15:00", "timezone_id": 310},
    "date": "2023-06-27",
    "daterange": {"from": "2023-06-06", "until": "2023-06-14"},
    "address": {"value": "Mustamäe tee 3a, Tallinn, Estonia", "country": "Estonia", "locality": "Tallinn"},
    "enum": 2,
    "set": [1, 3],
}
REFERENCE_TYPES = ("people", "org", "user")


def _docs(path: str) -> Any:
    return json.loads((DOCS / path).read_text())["body"]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Comparison:
    def __init__(self) -> None:
        self.differences: list[str] = []
        self.typed_leaves = 0

    def values(self, ours: Any, docs: Any, where: str) -> None:
        if ours is None or docs is None:
            return
        if _json_type(ours) != _json_type(docs):
            self.differences.append(f"{where}: {_json_type(ours)} where the docs have {_json_type(docs)}")
            return
        if isinstance(ours, dict):
            self.keys(ours, docs, where)
        elif isinstance(ours, list):
            for index, item in enumerate(ours):
                if docs:
                    self.values(item, docs[0], f"{where}[{index}]")
        else:
            self.typed_leaves += 1

    def keys(self, ours: dict[str, Any], docs: dict[str, Any], where: str, *, subset: bool = False) -> None:
        missing = [] if subset else sorted(set(docs) - set(ours))
        extra = sorted(set(ours) - set(docs))
        if missing or extra:
            self.differences.append(f"{where}: keys missing {missing}, not documented {extra}")
        for key in sorted(set(ours) & set(docs)):
            if key == "custom_fields" and isinstance(ours[key], dict):
                self.custom_fields(ours[key], f"{where}.custom_fields")
            else:
                self.values(ours[key], docs[key], f"{where}.{key}")

    def custom_fields(self, fields: dict[str, Any], where: str) -> None:
        for key, value in fields.items():
            if not HASH.match(key):
                self.differences.append(f"{where}: {key!r} is not a 40-character hash key")
            if value is None:
                continue
            documented = _docs(f"v2_custom_fields/{value.get('type')}.json")["custom_field_hash"]
            self.values(value, documented, f"{where}.{key[:8]}({value.get('type')})")


@pytest.fixture
def world_with_every_field(sandbox_world) -> Iterator[tuple[Any, dict[str, str]]]:
    company = sandbox_world.acme
    keys: dict[str, str] = {}
    for index, field_type in enumerate([*CUSTOM_FIELDS, *REFERENCE_TYPES]):
        key = f"{index:02d}".ljust(40, "c")
        options = [{"id": n, "label": f"Option {n}"} for n in (1, 2, 3)] if field_type in ("enum", "set") else []
        for entity in (FieldDefinition.Entity.DEAL, FieldDefinition.Entity.LEAD):
            FieldDefinition.objects.create(
                company=company, entity=entity, key=key, name=field_type, field_type=field_type, options=options
            )
        keys[field_type] = key
    yield sandbox_world, keys


def _custom_values(world: Any, keys: dict[str, str]) -> dict[str, Any]:
    person = Person.objects.filter(company=world.acme).earliest("pk")
    org = Organization.objects.filter(company=world.acme).earliest("pk")
    references = {"people": person.pk, "org": org.pk, "user": world.acme_regular.pk}
    return {keys[kind]: value for kind, value in {**CUSTOM_FIELDS, **references}.items()}


def _emit_everything(world: Any, keys: dict[str, str]) -> None:
    """Every entity x action the sandbox supports, through its services (as API calls and pages do)."""
    acme, admin = world.acme, world.acme_admin
    person = Person.objects.filter(company=acme, org__isnull=False).earliest("pk")
    custom = _custom_values(world, keys)
    deal = services.deal_create(
        company=acme,
        actor=admin,
        data={"title": "Conformance", "value": 100, "person_id": person.pk, "org_id": person.org_id},
        source=API,
    )
    services.deal_update(deal=deal, actor=admin, data={"custom_fields": custom, "status": "won"}, source=API)
    services.note_create(
        company=acme, actor=admin, data={"content": "Deal note", "deal_id": deal.pk, "person_id": person.pk}, source=API
    )
    services.deal_delete(deal=deal, actor=admin, source=API)
    created = services.person_create(
        company=acme, actor=admin, data={"name": "Sample Person", "org_id": person.org_id}, source=API
    )
    services.person_update(person=created, actor=admin, data={"name": "Sample Renamed"}, source=API)
    services.person_delete(person=created, actor=admin, source=API)
    services.organization_create(company=acme, actor=admin, name="Sample Org", address="Tallinn", source=API)
    lead = services.lead_create(
        company=acme,
        actor=admin,
        data={
            "title": "Lead",
            "person_id": person.pk,
            "organization_id": person.org_id,
            "value": {"amount": 300, "currency": "EUR"},
        },
        source=API,
    )
    services.lead_update(lead=lead, actor=admin, data={"is_archived": True, **custom}, source=API)
    services.lead_delete(lead=lead, actor=admin, source=API)
    pipeline = services.pipeline_create(company=acme, actor=admin, name="Sample pipeline", source=API)
    stage = services.stage_create(pipeline=pipeline, actor=admin, name="Sample Stage", source=API)
    services.stage_update(stage=stage, actor=admin, rotten_days=1, source=API)
    services.pipeline_update(pipeline=pipeline, actor=admin, deal_probability=False, source=API)
    services.stage_delete(stage=stage, actor=admin, source=API)
    services.pipeline_delete(pipeline=pipeline, actor=admin, source=API)


def _webhook(world: Any, version: str) -> Webhook:
    admin: SandboxUser = world.acme_admin
    return Webhook.objects.create(
        company=world.acme,
        owner=admin,
        user_id=admin.pk,
        event_action="*",
        event_object="*",
        subscription_url="https://app.example/hook",
        version=version,
    )


def test_every_body_the_sandbox_emits_matches_the_documented_examples(world_with_every_field) -> None:
    world, keys = world_with_every_field
    first_event = ChangeEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _emit_everything(world, keys)
    events = list(ChangeEvent.objects.filter(pk__gt=first_event).order_by("pk"))
    v2_hook, v1_hook = _webhook(world, "2.0"), _webhook(world, "1.0")
    comparison = Comparison()
    combinations: set[tuple[str, str]] = set()
    typed_custom_fields: set[str] = set()

    for event in events:
        combinations.add((event.entity, event.action))
        ours = body_v2(event=event, webhook=v2_hook, attempt=1)
        documented = _docs(f"v2/{event.entity}.{event.action}.json")
        where = f"v2 {event.entity}.{event.action}"
        if event.action == "change":
            # ``previous`` holds what changed: its keys are some of the record's, typed as the record's.
            comparison.keys({**ours, "previous": {}}, {**documented, "previous": {}}, where)
            comparison.keys(ours["previous"], documented["data"], f"{where}.previous", subset=True)
        else:
            comparison.keys(ours, documented, where)
        for value in ((ours["data"] or {}).get("custom_fields") or {}).values():
            if value is not None:
                typed_custom_fields.add(value["type"])

        v1 = body_v1(event=event, webhook=v1_hook, attempt=1)
        documented_v1 = _docs("v1/deal.added.json")
        # The documented v1 example prints placeholders for the objects; the objects are checked below.
        envelope = {k: v for k, v in v1.items() if k not in ("current", "previous", "event")}
        comparison.keys(
            envelope,
            {k: v for k, v in documented_v1.items() if k not in ("current", "previous", "event")},
            f"v1 {event.entity}.{event.action}",
        )
        assert v1["event"] == f"{webhook_bodies.V1_ACTIONS[event.action]}.{event.entity}"
        for side in ("current", "previous"):
            obj = v1[side]
            if obj is None:
                continue
            assert isinstance(obj, dict) and "custom_fields" not in obj, f"v1 {side} nests custom fields"
            if event.entity != "lead":  # API v1 times; leads keep ISO times with milliseconds in v1 too
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", obj["add_time"]), obj["add_time"]
            if event.entity == "person":
                assert "email" in obj and "emails" not in obj
            if event.entity in ("deal", "lead") and side == "current" and event.action == "change":
                top = {key for key in obj if HASH.match(key)}
                assert set(keys.values()) <= top, f"v1 {event.entity}: custom fields not at the top level"
                assert obj[keys["monetary"]] == 200 and obj[f"{keys['monetary']}_currency"] == "EUR"

    compared = 2 * len(events)
    print(
        f"\nwebhook conformance: {compared} bodies compared ({len(events)} v2 + {len(events)} v1) over "
        f"{len(combinations)} entity x action combinations, {len(typed_custom_fields)} custom-field types, "
        f"{comparison.typed_leaves} typed values; differences: {len(comparison.differences)}"
    )
    assert comparison.differences == [], "\n".join(comparison.differences)
    assert combinations >= {
        (entity, action)
        for entity in ("deal", "person", "lead", "pipeline", "stage")
        for action in ("create", "change", "delete")
    } | {("organization", "create"), ("note", "create")}
    assert typed_custom_fields == {*CUSTOM_FIELDS, *REFERENCE_TYPES}


def test_the_comparison_catches_what_it_must() -> None:
    """A wrong type, a missing or extra key, an untyped custom field: each is a difference."""
    documented = _docs("v2/deal.change.json")
    comparison = Comparison()
    comparison.keys(documented, documented, "same")
    assert comparison.differences == []
    for broken in (
        {**documented, "data": {**documented["data"], "visible_to": 3}},  # an integer where "3" is documented
        {**documented, "data": {**documented["data"], "permitted_user_ids": []}},
        {k: v for k, v in documented.items() if k != "previous"},
        {**documented, "data": {**documented["data"], "custom_fields": {"a" * 40: {"type": "enum", "id": "17"}}}},
    ):
        comparison = Comparison()
        comparison.keys(broken, documented, "broken")
        assert len(comparison.differences) == 1, comparison.differences
