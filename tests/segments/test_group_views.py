"""The builder's groups: added, nested, filled and removed with plain form posts (no
JavaScript) and with htmx, counted live, saved, and shown again when editing."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

from sqlalchemy import select

from tests.factories import make_member
from webapp.extensions import db
from webapp.models import Segment
from webapp.timeutil import utcnow

HX = {"HX-Request": "true"}
TARGET = [{"any": [
    {"all": [{"field": "tier", "operator": "equals", "value": "gold"},
             {"field": "points", "operator": ">=", "value": 1000}]},
    {"all": [{"field": "custom_fields.vip", "operator": "equals", "value": True},
             {"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}]}]}]


class FormReader(HTMLParser):
    """What a browser would post from the segment form (inputs, checked boxes, selects)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self.in_form = False
        self.select: str | None = None
        self.first_option: str | None = None
        self.chosen = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "segment-form":
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "search"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data[a["name"]] = a.get("value") or ""
        elif tag == "textarea" and a.get("name"):
            self.data[a["name"]] = ""
        elif tag == "select" and a.get("name"):
            self.select, self.first_option, self.chosen = a["name"], None, False
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
                self.data[self.select] = self.first_option
            if "selected" in a and not self.chosen:
                self.data[self.select], self.chosen = a.get("value", ""), True

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        if tag == "form":
            self.in_form = False


def read_form(html: str) -> dict[str, str]:
    reader = FormReader()
    reader.feed(html)
    return reader.data


def _people() -> None:
    make_member(tier="gold", points=1200)
    make_member(tier="gold", points=10)
    make_member(tier="bronze", custom_fields={"vip": True})
    old = make_member(tier="bronze", custom_fields={"vip": True})
    old.created_at = utcnow() - timedelta(days=400)
    db.session.commit()


def _new_rows(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Row ids that appeared (from their field selects)."""
    return [k[:-len("-field")] for k in after if k.endswith("-field") and k not in before]


def test_marketer_builds_a_nested_or_without_javascript(client, auth):
    """(tier = gold AND points >= 1000) OR (vip AND joined in the last 90 days), posted as a
    browser without JavaScript would, with the count shown after "Update preview"."""
    _people()
    auth.login("marketer")
    page = client.get("/segments/new")
    data = read_form(page.get_data(as_text=True)) | {"name": "Gold or new VIP"}

    def press(button: str, value: str) -> dict[str, str]:
        nonlocal data
        response = client.post("/segments/new", data={**data, button: value})
        assert response.status_code == 200, response.get_data(as_text=True)[:400]
        new = read_form(response.get_data(as_text=True))
        return new

    after = press("add_group", "include")  # an "any of" group with one row
    (outer,) = [k[:-5] for k in after if k.endswith("-mode")]
    assert after[f"{outer}-mode"] == "any"
    (first_row,) = _new_rows(data, after)
    data = after
    after = press("remove_row", first_row)  # the blank row goes, the group stays
    assert f"{first_row}-field" not in after and f"{outer}-mode" in after
    data = after
    inner = []
    for _ in range(2):
        after = press("add_group", outer)  # "all of" inside "any of", one row each
        inner.append(next(k[:-5] for k in after if k.endswith("-mode") and k not in data))
        assert after[f"{inner[-1]}-mode"] == "all"
        assert after[f"{inner[-1]}-parent"] == outer
        data = after
    fills = [
        {"field": "tier", "operator": "equals", "value": "gold"},
        {"field": "points", "operator": ">=", "value": "1000"},
        {"field": "custom_fields", "key": "vip", "json_type": "boolean", "operator": "equals",
         "value": "true"},
        {"field": "created_at", "operator": ">=", "date_mode": "days_ago", "days": "90"},
    ]
    for n, box in enumerate(inner):
        rows = [k[:-7] for k in data if k.endswith("-parent") and data[k] == box
                and f"{k[:-7]}-field" in data]
        if len(rows) < 2:
            data = press("add_to", box)
            rows = [k[:-7] for k in data if k.endswith("-parent") and data[k] == box
                    and f"{k[:-7]}-field" in data]
        for row, fill in zip(rows, fills[2 * n:2 * n + 2], strict=True):
            data[f"{row}-field"] = fill["field"]
            data = press("preview", "1")  # the field's operators and inputs appear
            data.update({f"{row}-{k}": v for k, v in fill.items()})
    response = client.post("/segments/new", data={**data, "preview": "1"})
    text = response.get_data(as_text=True)
    assert 'data-count="2"' in text, text[text.find("preview-panel"):][:1500]
    saved = client.post("/segments/new", data={**data, "save": "1"})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:2000]
    segment = db.session.scalar(select(Segment))
    assert segment.include == TARGET and segment.size == 2
    shown = client.get(f"/segments/{segment.id}").get_data(as_text=True)
    assert ("any of: (tier is gold and points at least 1,000) or (custom field vip is true and "
            "joined on or after 90 days ago)") in shown
    # Editing shows the same tree again, and saving it unchanged keeps it.
    edit = client.get(f"/segments/{segment.id}/edit").get_data(as_text=True)
    again = read_form(edit)
    assert sorted(v for k, v in again.items() if k.endswith("-mode")) == ["all", "all", "any"]
    resaved = client.post(f"/segments/{segment.id}/edit", data={**again, "save": "1"})
    assert resaved.status_code == 303
    db.session.refresh(segment)
    assert segment.include == TARGET


def test_group_buttons_with_htmx_rerender_the_builder(client, auth):
    auth.login("marketer")
    base = {"name": "x", "kind": "dynamic", "include-0-field": "tier",
            "include-0-operator": "equals", "include-0-value": "gold", "include-0-parent": ""}
    added = client.post("/segments/builder/groups", data={**base, "add_group": "include"},
                        headers=HX)
    text = added.get_data(as_text=True)
    assert added.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<section class="builder" id="criteria-builder"')
    assert added.headers["HX-Trigger"] == "criteria-changed"
    assert 'id="box-include-1"' in text and 'id="row-include-2"' in text
    data = read_form(f'<form id="segment-form">{text}</form>') | {"name": "x",
                                                                  "kind": "dynamic"}
    nested = client.post("/segments/builder/groups", data={**data, "add_group": "include-1"},
                         headers=HX).get_data(as_text=True)
    assert 'id="box-include-3"' in nested
    data = read_form(f'<form id="segment-form">{nested}</form>') | {"name": "x",
                                                                    "kind": "dynamic"}
    assert data["include-3-parent"] == "include-1" and data["include-3-mode"] == "all"
    deeper = client.post("/segments/builder/groups", data={**data, "add_group": "include-3"},
                         headers=HX).get_data(as_text=True)
    data = read_form(f'<form id="segment-form">{deeper}</form>') | {"name": "x",
                                                                    "kind": "dynamic"}
    (third,) = [k[:-5] for k in data if k.endswith("-mode") and k[:-5] not in
                ("include-1", "include-3")]
    assert f'name="add_group" value="{third}"' not in deeper  # depth 3: no deeper group
    removed = client.post("/segments/builder/groups", data={**data, "remove_row": "include-1"},
                          headers=HX).get_data(as_text=True)
    assert "box-include" not in removed and 'id="row-include-0"' in removed


def test_empty_group_and_bad_criterion_in_a_group_are_marked(client, auth):
    auth.login("marketer")
    data = {"name": "x", "kind": "dynamic", "include-0-mode": "any", "include-0-parent": "",
            "include-1-mode": "all", "include-1-parent": "",
            "include-2-field": "points", "include-2-operator": ">=", "include-2-value": "lots",
            "include-2-parent": "include-1", "save": "1"}
    response = client.post("/segments/new", data=data)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    box = text[text.find('id="box-include-0"'):]
    assert "the group is empty: add a criterion to it or remove it" in box[:3000]
    row = text[text.find('id="row-include-2"'):]
    assert "points takes a number" in row[:6000]
    assert db.session.scalar(select(Segment)) is None


def test_preview_counts_nested_groups_and_warns(client, auth):
    _people()
    auth.login("marketer")
    data = {"name": "x", "kind": "dynamic", "include-0-mode": "any", "include-0-parent": "",
            "include-1-field": "tier", "include-1-operator": "equals",
            "include-1-value": "gold", "include-1-parent": "include-0"}
    response = client.post("/segments/builder/preview", data=data, headers=HX)
    text = response.get_data(as_text=True)
    assert 'data-count="2"' in text
    assert "has one item, so it is the same as that item alone" in text
    assert "(tier is gold)" in text


def test_hand_made_parent_loops_do_not_break_the_builder(client, auth):
    auth.login("marketer")
    data = {"name": "x", "kind": "dynamic", "include-0-mode": "any",
            "include-0-parent": "include-1", "include-1-mode": "all",
            "include-1-parent": "include-0", "include-2-field": "tier",
            "include-2-operator": "exists", "include-2-parent": "exclude-9", "preview": "1"}
    response = client.post("/segments/new", data=data)
    assert response.status_code == 200
    assert 'id="row-include-2"' in response.get_data(as_text=True)


def test_support_cannot_use_the_group_endpoint(client, auth):
    auth.login("support")
    assert client.post("/segments/builder/groups", data={}).status_code == 403


def test_adding_to_a_group_stops_at_the_criteria_limit(app, client, auth):
    auth.login("marketer")
    app.config["LIMIT_CRITERIA"] = 1
    data = {"name": "x", "kind": "dynamic", "include-0-mode": "any", "include-0-parent": "",
            "include-1-field": "tier", "include-1-operator": "exists",
            "include-1-parent": "include-0"}
    for url, headers in (("/segments/new", {}), ("/segments/builder/groups", HX)):
        for button in ("add_to", "add_group"):
            response = client.post(url, data={**data, button: "include-0"}, headers=headers)
            text = response.get_data(as_text=True)
            assert "The limit is 1 include criterion per segment" in text
            assert 'id="row-include-2"' not in text and 'id="box-include-2"' not in text
