"""A segment's members as CSV, from the segment page and the API: the content, the roles, and
that it streams in keyset chunks instead of loading every member."""

from __future__ import annotations

import csv
import io
import re
import types

import pytest

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.segments import export


@pytest.fixture
def segments(app, client, auth):
    """A dynamic segment (two by rule, one pinned in by an admin's override) and a list."""
    ana = make_member(external_id="U-ANA", email="ana@example.com", points=900)
    bob = make_member(external_id="=cmd()", email=None, points=800)
    cy = make_member(external_id="U-CY", email="cy@example.com", points=5)
    make_member(external_id="U-DEE", points=1)
    rich = make_segment("Rich & famous", customer_segment_id="RICH",
                        include=[{"field": "points", "operator": ">=", "value": 500}])
    listed = make_segment("Beta", kind="static")
    add_to_list(listed, ana, cy)
    auth.login("admin")
    response = client.post("/overrides/set", data={
        "context": "segment", "segment_id": str(rich.id), "member": "U-CY", "status": "add",
        "description": "VIP by contract"})
    assert response.status_code == 303
    auth.logout()
    db.session.refresh(rich)
    return {"rich": rich, "listed": listed, "ana": ana, "bob": bob, "cy": cy}


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_segment_page_download_lists_every_member_and_why(client, auth, segments):
    auth.login("support")
    rich = segments["rich"]
    page = client.get(f"/segments/{rich.id}").get_data(as_text=True)
    assert f'href="/segments/{rich.id}/members.csv"' in page and "Download CSV (3)" in page
    response = client.get(f"/segments/{rich.id}/members.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert f'filename="segment-{rich.id}-rich-famous.csv"' in \
        response.headers["Content-Disposition"]
    rows = _rows(response)
    assert list(rows[0]) == ["member_id", "external_id", "email", "why"]
    by_external = {r["external_id"]: r for r in rows}
    assert set(by_external) == {"U-ANA", "'=cmd()", "U-CY"}  # formula neutralised
    assert by_external["U-ANA"] == {"member_id": segments["ana"].id, "external_id": "U-ANA",
                                    "email": "ana@example.com", "why": "rule"}
    assert by_external["U-CY"]["why"] == "override"
    assert by_external["'=cmd()"]["email"] == ""
    assert [r["member_id"] for r in rows] == sorted(r["member_id"] for r in rows)
    listed = _rows(client.get(f"/segments/{segments['listed'].id}/members.csv"))
    assert {(r["external_id"], r["why"]) for r in listed} == {("U-ANA", "list"), ("U-CY", "list")}


def test_download_needs_a_signed_in_user_and_an_existing_segment(client, auth, segments):
    url = f"/segments/{segments['rich'].id}/members.csv"
    response = client.get(url)
    assert response.status_code in (302, 401) and "ana@example.com" not in response.get_data(
        as_text=True)
    auth.login("support")
    assert client.get("/segments/999999/members.csv").status_code == 404


def test_api_csv_by_id_or_customer_segment_id(client, auth, segments):
    auth.login("admin")
    created = client.post("/admin/tokens", data={"name": "reader", "role": "support"},
                          follow_redirects=True)
    token = re.search(r'id="new-token" class="mono">([^<]+)<',
                      created.get_data(as_text=True)).group(1)
    auth.logout()
    headers = {"Authorization": f"Bearer {token}"}
    for ref in ("RICH", str(segments["rich"].id)):
        response = client.get(f"/api/v1/segments/{ref}/members.csv", headers=headers)
        assert response.status_code == 200 and response.mimetype == "text/csv", ref
        assert {r["external_id"] for r in _rows(response)} == {"U-ANA", "'=cmd()", "U-CY"}
    assert client.get("/api/v1/segments/RICH/members.csv").status_code == 401
    missing = client.get("/api/v1/segments/NOPE/members.csv", headers=headers)
    assert missing.status_code == 404 and missing.get_json(force=True)["errors"]
    unknown = client.get("/api/v1/segments/RICH/members.csv?page[size]=5", headers=headers)
    assert unknown.status_code == 400


def test_the_export_is_documented_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    answer = paths["/segments/{segment_ref}/members.csv"]["get"]["responses"]["200"]
    assert "text/csv" in answer["content"]


def test_members_stream_in_keyset_chunks(app, monkeypatch):
    """Each chunk is its own bounded query starting after the last member id sent."""
    for n in range(10):
        make_member(external_id=f"X-{n}", points=600)
    rich = make_segment("Rich", include=[{"field": "points", "operator": ">=", "value": 500}])
    statements = []
    real_execute = db.session.execute

    def counting(statement, *args, **kwargs):
        statements.append(str(statement))
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "execute", counting)
    pieces = export.csv_chunks(rich.id, chunk=3)
    assert isinstance(pieces, types.GeneratorType)
    assert statements == []  # nothing is read until the response is consumed
    header = next(pieces)
    assert header == "member_id,external_id,email,why\r\n"
    rest = list(pieces)
    lines = "".join(rest).splitlines()
    assert len(lines) == rich.size == 10
    assert [len(piece.splitlines()) for piece in rest] == [3, 3, 3, 1]
    pages = [s for s in statements if "FROM segment_memberships" in s]
    lookups = [s for s in statements if "FROM members" in s]
    assert len(pages) == 4 and len(lookups) == 4 and len(statements) == 8
    # bounded index ranges, each starting after the last member sent; no join
    assert all("LIMIT" in s and "JOIN" not in s for s in pages)
    assert all("member_id >" in s for s in pages[1:])
