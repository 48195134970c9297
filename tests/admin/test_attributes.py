"""The attribute registry: declared custom fields, their checks on member writes, the exact
counts of members with a value and with a disagreeing one (SQL twin of the Python check)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import make_member
from webapp.extensions import db
from webapp.models import AttributeDefinition, AuditEntry
from webapp.services import attributes as registry
from webapp.targeting.declared import value_problem


def declare(key: str, type_: str, allowed: str = "", example: str = "") -> AttributeDefinition:
    return registry.save({"key": key, "type": type_, "allowed_values": allowed,
                          "description": "", "example": example}, actor="test")


# --- the pure check ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "allowed", "value", "fits"), [
    ("string", None, "gold", True), ("string", None, 3, False), ("string", ["a", "b"], "b", True),
    ("string", ["a", "b"], "c", False), ("number", None, 3, True), ("number", None, 2.5, True),
    ("number", None, True, False), ("number", None, "3", False), ("number", [1, 2], 2.0, True),
    ("number", [1, 2], 3, False), ("boolean", None, False, True), ("boolean", None, 0, False),
    ("boolean", None, "true", False), ("date", None, "2026-01-31", True),
    ("date", None, "2026-02-30", False), ("date", None, "31/01/2026", False),
    ("date", None, 20260131, False), ("list", None, ["a", "b"], True), ("list", None, [], True),
    ("list", None, ["a", 1], False), ("list", None, "a", False), ("list", ["a"], ["a", "a"], True),
    ("list", ["a"], ["a", "b"], False), ("string", None, None, True), ("list", None, None, True),
])
def test_a_value_fits_its_declaration_or_the_message_says_why(kind, allowed, value, fits):
    problem = value_problem("vip", kind, allowed, value)
    assert (problem is None) is fits
    if problem:
        assert "'vip'" in problem


# --- declarations --------------------------------------------------------------------------------

def test_declarations_are_validated_with_a_message_per_field(app):
    with pytest.raises(registry.AttributeError_) as refused:
        registry.save({"key": "", "type": "colour", "allowed_values": "",
                       "example": ""}, actor="t")
    assert refused.value.errors == {"key": "Key is required.",
                                    "type": "Type is one of text, number, true / false, "
                                            "date (YYYY-MM-DD), list of text."}
    with pytest.raises(registry.AttributeError_) as refused:
        registry.save({"key": "age_band", "type": "number", "allowed_values": "1\nten",
                       "example": ""}, actor="t")
    assert refused.value.errors == {"allowed_values": "Allowed value 2: 'ten' is not a number."}
    with pytest.raises(registry.AttributeError_) as refused:
        registry.save({"key": "vip", "type": "boolean", "allowed_values": "true",
                       "example": ""}, actor="t")
    assert "not for true / false" in refused.value.errors["allowed_values"]
    with pytest.raises(registry.AttributeError_) as refused:
        registry.save({"key": "level", "type": "string", "allowed_values": "a\nb",
                       "example": "c"}, actor="t")
    assert refused.value.errors["example"].startswith("The example does not fit")
    with pytest.raises(registry.AttributeError_) as refused:
        registry.save({"key": "x" * 201, "type": "string"}, actor="t")
    assert refused.value.errors == {"key": "Key must be at most 200 characters (201 given)."}
    assert db.session.scalar(select(AttributeDefinition.id)) is None


def test_a_key_is_declared_once_and_every_change_is_audited(app):
    row = declare("Customer Type", "string", "retail\nbusiness\nretail", example="retail")
    assert row.allowed_values == ["retail", "business"] and row.example == "retail"
    with pytest.raises(registry.AttributeError_) as refused:
        declare("Customer Type", "string")
    assert refused.value.status == 409
    registry.save({"key": "Customer Type", "type": "string", "allowed_values": "",
                   "description": "Retail or business", "example": ""}, actor="t",
                  definition=row)
    assert row.allowed_values is None and row.description == "Retail or business"
    registry.delete(row, actor="t")
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["attribute.create", "attribute.update", "attribute.delete"]


# --- counts in SQL equal the Python check ---------------------------------------------------------

VALUES = ["gold", "GOLD", "", 3, 2.5, 0, True, False, None, "2026-01-31", "2026-02-30",
          "2026-13-01", "2024-02-29", "2025-02-29", "0000-01-01", "2026-1-01", "2026-01-31x",
          "31/01/2026", ["a", "b"], ["a", 1], [], ["b"], {"a": 1}, [["a"]]]
DECLARATIONS = [("string", ""), ("string", "gold\nsilver"), ("number", ""),
                ("number", "3\n2.5"), ("boolean", ""), ("date", ""), ("list", ""),
                ("list", "a")]


def test_the_registry_counts_members_with_a_value_and_those_that_disagree(app):
    for value in VALUES:
        make_member(custom_fields={f"f{n}": value for n in range(len(DECLARATIONS))}
                    | {"odd key \"x\"": value})
    make_member(custom_fields={})
    declared = {}
    for n, (kind, allowed) in enumerate(DECLARATIONS):
        declared[f"f{n}"] = declare(f"f{n}", kind, allowed)
    declare('odd key "x"', "string", "gold")
    counts = registry.usage()
    for key, row in [*declared.items(), ('odd key "x"', None)]:
        row = row or db.session.scalar(select(AttributeDefinition).where(
            AttributeDefinition.key == key))
        having = [v for v in VALUES if v is not None]
        wrong = [v for v in having if value_problem(key, row.type, row.allowed_values, v)]
        assert counts[key] == (len(having), len(wrong)), (key, row.type, row.allowed_values)


# --- the admin page ------------------------------------------------------------------------------

def test_admins_declare_edit_and_remove_fields_on_the_page(client, auth):
    make_member(custom_fields={"tier_code": "A"})
    make_member(custom_fields={"tier_code": 7})
    auth.login("admin")
    empty = client.get("/admin/attributes")
    assert empty.status_code == 200 and b"No declared fields yet" in empty.data
    bad = client.post("/admin/attributes", data={"key": "", "type": "string"})
    assert bad.status_code == 422 and b"Key is required." in bad.data
    created = client.post("/admin/attributes", data={
        "key": "tier_code", "type": "string", "allowed_values": "A\nB",
        "description": "Partner tier", "example": "A"})
    assert created.status_code == 303
    page = client.get("/admin/attributes")
    assert b"tier_code" in page.data and b"Partner tier" in page.data
    row = db.session.scalar(select(AttributeDefinition))
    assert registry.usage() == {"tier_code": (2, 1)}
    edit = client.get(f"/admin/attributes/{row.id}")
    assert edit.status_code == 200 and b"A\nB" in edit.data
    changed = client.post(f"/admin/attributes/{row.id}", data={
        "key": "tier_code", "type": "number", "allowed_values": "x"})
    assert changed.status_code == 422 and b"is not a number" in changed.data
    removed = client.post(f"/admin/attributes/{row.id}/delete")
    assert removed.status_code == 303
    assert db.session.scalar(select(AttributeDefinition.id)) is None


@pytest.mark.parametrize("role", ["marketer", "support"])
def test_only_admins_manage_the_registry(client, auth, role):
    row = declare("vip", "boolean")
    auth.login(role)
    assert client.get("/admin/attributes").status_code == 403
    assert client.post("/admin/attributes", data={"key": "x", "type": "string"}).status_code \
        == 403
    assert client.post(f"/admin/attributes/{row.id}/delete").status_code == 403
    assert db.session.get(AttributeDefinition, row.id) is not None
