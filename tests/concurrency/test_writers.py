"""Many writers at once, over HTTP against gunicorn: membership stays exact.

Each test releases several client processes at the same instant (tests/concurrency/client.py)
and then checks the invariants (conftest.check_invariants) and the per-request answers: no
valid request gets a 409, 503 or 500 because of another writer, and per-item results are
true (their sum is the size; of two removes of one member exactly one says `removed`).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from tests.concurrency.client import dashboard_page, run_clients
from tests.concurrency.conftest import MARKETER, PASSWORD, ROOT, check_invariants


def _identifiers(ids) -> dict:
    return {"data": [{"type": "members", "id": i} for i in ids]}


def _segment(server, name: str, kind: str = "static", include=None) -> int:
    attributes = {"name": name, "kind": kind}
    if include is not None:
        attributes["include"] = include
    status, body = server.api("POST", "/segments", {"data": {"type": "segments",
                                                             "attributes": attributes}})
    assert status == 201, body
    return int(body["data"]["id"])


def _ok(answers) -> None:
    """Every request of every client was answered 200."""
    bad = [(status, body) for client in answers for status, body in client if status != 200]
    assert not bad, f"{len(bad)} requests failed, e.g. {bad[:3]}"


def _results(answers):
    for client in answers:
        for _, body in client:
            yield from body["meta"]["results"]


def _size(server, segment_id: int) -> int:
    status, body = server.api("GET", f"/segments/{segment_id}")
    assert status == 200
    return body["data"]["attributes"]["size"]


def test_overlapping_adds_and_removes_keep_size_rows_and_events_exact(server):
    segment = _segment(server, "Overlapping edits")
    pool = server.member_ids[:40]
    path = f"/segments/{segment}/relationships/members"
    plans = []
    for client in range(6):
        rng = random.Random(client)
        plans.append([(rng.choice(("POST", "DELETE")), path,
                       _identifiers(rng.sample(pool, 8))) for _ in range(10)])
    answers = run_clients(server.port, server.token, plans)
    _ok(answers)
    outcomes = [r["result"] for r in _results(answers)]
    assert set(outcomes) <= {"added", "already_member", "removed", "not_member"}
    # True per-item answers add up: every `added` joined once, every `removed` left once.
    assert outcomes.count("added") - outcomes.count("removed") == _size(server, segment)
    check_invariants(server)


def test_the_same_member_removed_at_once_is_removed_exactly_once(server):
    segment = _segment(server, "Removed twice")
    targets = server.member_ids[40:52]
    path = f"/segments/{segment}/relationships/members"
    status, body = server.api("POST", path, _identifiers(targets))
    assert status == 200 and body["meta"]["size"] == len(targets)
    plans = [[("DELETE", path, _identifiers([member])) for member in targets]
             for _ in range(4)]
    answers = run_clients(server.port, server.token, plans)
    _ok(answers)
    for index, member in enumerate(targets):
        said = sorted(client[index][1]["meta"]["results"][0]["result"] for client in answers)
        assert said == ["not_member", "not_member", "not_member", "removed"], (member, said)
    with server.engine.connect() as conn:
        removes = conn.execute(text(
            "SELECT member_id, count(*) FROM membership_events WHERE segment_id = :s "
            "AND action = 'REMOVE' GROUP BY member_id"), {"s": segment}).all()
    assert sorted(removes) == sorted((member, 1) for member in targets)
    assert _size(server, segment) == 0
    check_invariants(server)


def test_eight_overlapping_adds_all_succeed_and_report_each_member_once(server):
    segment = _segment(server, "Eight adders")
    members = server.member_ids[:200]
    plans = []
    for client in range(8):
        shuffled = members[:]
        random.Random(100 + client).shuffle(shuffled)
        plans.append([("POST", f"/segments/{segment}/relationships/members",
                       _identifiers(shuffled))])
    answers = run_clients(server.port, server.token, plans)
    _ok(answers)
    added = [r["member_id"] for r in _results(answers) if r["result"] == "added"]
    assert sorted(added) == sorted(members)  # each once; the rest `already_member`
    assert _size(server, segment) == 200
    check_invariants(server)


def test_overrides_race_list_edits_and_profile_changes(server):
    beta = _segment(server, "Beta testers")
    rich_beta = _segment(server, "Rich beta testers", "dynamic", [
        {"field": "segment", "operator": "in", "value": [beta]},
        {"field": "points", "operator": ">=", "value": 50}])
    pool = server.member_ids[60:100]
    overrides, lists, profiles = [], [], []
    for client in range(2):
        rng = random.Random(200 + client)
        overrides.append([("POST", f"/segments/{rich_beta}/overrides", {"data": [
            {"type": "overrides", "attributes": {"member": member,
                                                 "status": rng.choice(("add", "block", "reset"))}}
            for member in rng.sample(pool, 4)]}) for _ in range(6)])
        lists.append([(rng.choice(("POST", "DELETE")), f"/segments/{beta}/relationships/members",
                       _identifiers(rng.sample(pool, 6))) for _ in range(8)])
        profiles.append([("PATCH", f"/members/{member}", {"data": {
            "type": "members", "id": member, "attributes": {"points": rng.randrange(100)}}})
            for member in rng.sample(pool, 10)])
    answers = run_clients(server.port, server.token, overrides + lists + profiles)
    _ok(answers)
    check_invariants(server)


def _upload(env: dict, segment: int, path: str, barrier) -> None:
    """A command-line upload (its own process), released with the API clients."""
    barrier.wait()
    subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "segments", "upload",
                    str(segment), path, "--mode", "replace"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)


def test_an_upload_races_api_list_edits(server, tmp_path: Path):
    segment = _segment(server, "Uploaded list")
    file = tmp_path / "list.csv"
    file.write_text("external_id\n" + "".join(f"c{n:03d}\n" for n in range(100, 220)))
    pool = server.member_ids[90:130]  # overlaps the file's first members
    plans = []
    for client in range(4):
        rng = random.Random(300 + client)
        plans.append([(rng.choice(("POST", "DELETE")), f"/segments/{segment}/relationships/members",
                       _identifiers(rng.sample(pool, 8))) for _ in range(8)])
    answers = run_clients(server.port, server.token, plans,
                          extra=[(_upload, (server.env, segment, str(file)))])
    _ok(answers)
    with server.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM uploads WHERE segment_id = :s"),
                            {"s": segment}).scalar_one() == "applied"
    check_invariants(server)


def test_a_rule_edit_races_profile_changes(server):
    segment = _segment(server, "Points club", "dynamic", [
        {"field": "points", "operator": ">=", "value": 30}])
    rules = [[{"field": "points", "operator": ">=", "value": 60}],
             [{"field": "points", "operator": ">=", "value": 20},
              {"field": "tier", "operator": "in", "value": ["gold", "silver"]}],
             [{"field": "points", "operator": "<", "value": 50}]]
    editor = [("PATCH", f"/segments/{segment}", {"data": {
        "type": "segments", "id": str(segment), "attributes": {"include": rules[n % 3]}}})
        for n in range(6)]
    profiles = []
    for client in range(4):
        rng = random.Random(400 + client)
        profiles.append([("PATCH", f"/members/{member}", {"data": {
            "type": "members", "id": member, "attributes": {
                "points": rng.randrange(100), "tier": rng.choice(("bronze", "gold"))}}})
            for member in rng.sample(server.member_ids, 10)])
    answers = run_clients(server.port, server.token, [editor, *profiles])
    _ok(answers)
    check_invariants(server)


def test_an_upload_whose_process_died_shows_as_interrupted_and_can_run_again(server,
                                                                             tmp_path: Path):
    segment = _segment(server, "Killed upload")
    file = tmp_path / "killed.csv"
    # 50 members, then many unknown ids: reading them keeps the upload busy long enough to
    # be killed while it runs (as soon as its runner lock exists, before it can apply).
    file.write_text("external_id\n" + "".join(f"c{n:03d}\n" for n in range(0, 50))
                    + "".join(f"unknown-{n}\n" for n in range(100_000)))
    command = [sys.executable, "-m", "flask", "--app", "webapp", "segments", "upload",
               str(segment), str(file), "--mode", "add"]
    process = subprocess.Popen(command, cwd=ROOT, env=server.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runners = server.workdir / "instance" / "uploads" / "runners"
    deadline = time.monotonic() + 60
    while not (runners.is_dir() and any(runners.iterdir())):
        assert time.monotonic() < deadline and process.poll() is None, "it never started"
        time.sleep(0.01)
    process.kill()
    process.wait(timeout=30)
    with server.engine.connect() as conn:
        upload_id, state = conn.execute(text(
            "SELECT id, status FROM uploads WHERE segment_id = :s"), {"s": segment}).one()
    assert state == "applying"  # as the dead process left it
    status, html = dashboard_page(server.port, MARKETER, PASSWORD,
                                  f"/segments/{segment}/uploads/{upload_id}")
    assert status == 200
    assert "Interrupted." in html and "nothing was changed" in html
    assert _size(server, segment) == 0
    again = tmp_path / "again.csv"
    again.write_text("external_id\n" + "".join(f"c{n:03d}\n" for n in range(0, 50)))
    server.flask("segments", "upload", str(segment), str(again), "--mode", "add")  # run again
    assert _size(server, segment) == 50
    check_invariants(server)


def test_members_deleted_while_they_join_other_segments(server):
    """A member deleted at the moment other requests add it to segments it is not in yet:
    every request is answered (no 409/503), each member is deleted once, and no row or
    event is left half-done."""
    status, body = server.api("POST", "/members/batch", {"data": [
        {"type": "members", "attributes": {"external_id": f"gone{n:02d}"}} for n in range(12)]})
    assert status == 200, body
    doomed = [r["id"] for r in body["meta"]["results"]]
    home, *others = (_segment(server, f"Deletion race {n}") for n in range(3))
    status, _ = server.api("POST", f"/segments/{home}/relationships/members",
                           _identifiers(doomed))
    assert status == 200
    deleters = [[("DELETE", f"/members/{member}", None) for member in doomed]
                for _ in range(2)]
    adders = [[("POST", f"/segments/{segment}/relationships/members", _identifiers([member]))
               for member in doomed] for segment in others for _ in range(2)]
    answers = run_clients(server.port, server.token, deleters + adders)
    bad = [(status, body) for client in answers for status, body in client
           if status not in (200, 204, 404)]
    assert not bad, f"{len(bad)} requests failed, e.g. {bad[:3]}"
    for index in range(len(doomed)):  # both deletes answer as deleted (or gone), none fails
        assert {answers[c][index][0] for c in range(2)} <= {204, 404}
    outcomes = {r["result"] for client in answers[2:] for _, body in client
                for r in body["meta"]["results"]}
    assert outcomes <= {"added", "already_member", "unknown_member"}, outcomes
    with server.engine.connect() as conn:
        rows = set(conn.execute(text("SELECT member_id FROM segment_memberships")).scalars())
    assert not rows & set(doomed)
    check_invariants(server)


def test_activities_posted_at_once_count_once_and_move_members_exactly(server):
    """Six clients post overlapping batches of purchases (the same external ids sent by
    several clients, as retries are): each activity is recorded exactly once, and the
    segment on "3 purchases in the last 30 days" holds exactly who has 3 distinct ones, each
    member added by one event."""
    from datetime import UTC, datetime, timedelta

    segment = _segment(server, "Three purchases", "dynamic", [{
        "field": "activity.count", "operator": ">=", "value": 3,
        "activity": {"type": "purchase", "window": {"days": 30}}}])
    members = server.member_ids[:30]
    when = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    # member i has i % 5 distinct purchases: p-<member>-<k>
    purchases = [(member, f"p-{member}-{k}") for i, member in enumerate(members)
                 for k in range(i % 5)]
    plans = []
    for client in range(6):
        rng = random.Random(700 + client)
        chosen = rng.sample(purchases, len(purchases) * 2 // 3)
        batches = [chosen[start:start + 10] for start in range(0, len(chosen), 10)]
        plans.append([("POST", "/activities", {"data": [
            {"type": "activities", "attributes": {
                "member": member, "activity_type": "purchase", "external_id": ref,
                "occurred_at": when, "amount": 2.5}} for member, ref in batch]})
            for batch in batches])
    answers = run_clients(server.port, server.token, plans)
    _ok(answers)
    recorded = sorted(r["external_id"] for r in _results(answers) if r["result"] == "recorded")
    sent = {ref for plan in plans for _, _, body in plan
            for ref in (item["attributes"]["external_id"] for item in body["data"])}
    assert recorded == sorted(sent)  # each exactly once; every other copy is a duplicate
    expected = {member for i, member in enumerate(members)
                if len({ref for m, ref in purchases if m == member and ref in sent}) >= 3}
    with server.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM activities")).scalar()
        adds = conn.execute(text(
            "SELECT member_id, count(*) FROM membership_events WHERE segment_id = :s "
            "AND action = 'ADD' GROUP BY member_id"), {"s": segment}).all()
    assert stored == len(sent)
    assert sorted(adds) == sorted((member, 1) for member in expected)
    assert _size(server, segment) == len(expected)
    check_invariants(server)
