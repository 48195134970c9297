"""Pictures: membership changes per day and the largest segments on the overview, a segment's
size over time (hourly for a new segment), and the overlap (Venn) view of 2 or 3 segments."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.factories import add_to_list, make_member, make_segment
from webapp.extensions import db
from webapp.models import MembershipEvent, Override, Segment, SegmentSizeSnapshot
from webapp.services import stats
from webapp.services.segments import archive_segment
from webapp.timeutil import utcnow

HX = {"HX-Request": "true"}
NOW = datetime(2026, 12, 5, 15, 30)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _event(segment_id: int, action: str, when: datetime, member: str = "m") -> None:
    db.session.add(MembershipEvent(action=action, segment_id=segment_id, segment_name="s",
                                   member_id=member, source="api", created_at=when))


# --- the numbers -----------------------------------------------------------------------------

def test_changes_per_day_count_adds_and_removes_of_the_window_only(app):
    _event(1, "ADD", NOW - timedelta(days=40))  # before the window
    for _ in range(3):
        _event(1, "ADD", NOW - timedelta(days=2, hours=1))
    _event(2, "REMOVE", NOW - timedelta(days=2, hours=3))
    _event(1, "ADD", NOW - timedelta(minutes=5))
    _event(1, "REMOVE", NOW - timedelta(minutes=4))
    _event(1, "REMOVE", NOW - timedelta(minutes=3))
    db.session.commit()
    rows = stats.membership_changes_per_day(30, NOW)
    assert len(rows) == 30
    assert rows[0][0] == NOW.date() - timedelta(days=29) and rows[-1][0] == NOW.date()
    by_day = {day: (adds, removes) for day, adds, removes in rows}
    assert by_day[NOW.date()] == (1, 2)
    assert by_day[(NOW - timedelta(days=2, hours=1)).date()] == (3, 1)
    assert sum(a + r for _, a, r in rows) == 7  # the 40-day-old event is left out


def test_first_event_of_a_window_is_found_by_id(app):
    for minutes in (300, 200, 100, 50, 10):
        _event(1, "ADD", NOW - timedelta(minutes=minutes))
    db.session.commit()
    ids = [e.id for e in db.session.query(MembershipEvent).order_by(MembershipEvent.id)]
    assert stats.first_event_id_since(NOW - timedelta(minutes=120)) == ids[2]
    assert stats.first_event_id_since(NOW - timedelta(minutes=1000)) == ids[0]
    assert stats.first_event_id_since(NOW) is None


def test_daily_sizes_carry_the_last_known_size_forward(app):
    segment = make_segment("S", kind="static")
    db.session.query(SegmentSizeSnapshot).delete()
    for days_ago, size in ((40, 7), (5, 10), (2, 4)):
        db.session.add(SegmentSizeSnapshot(segment_id=segment.id,
                                           day=NOW.date() - timedelta(days=days_ago), size=size))
    db.session.commit()
    series = stats.daily_sizes([segment.id], 10, NOW)[segment.id]
    assert [size for _, size in series] == [7, 7, 7, 7, 10, 10, 10, 4, 4, 4]
    fresh = make_segment("Fresh", kind="static")
    db.session.query(SegmentSizeSnapshot).filter_by(segment_id=fresh.id).delete()
    db.session.add(SegmentSizeSnapshot(segment_id=fresh.id, day=NOW.date(), size=3))
    db.session.commit()
    assert [s for _, s in stats.daily_sizes([fresh.id], 3, NOW)[fresh.id]] == [None, None, 3]


def test_a_segment_created_an_hour_ago_gets_five_minute_sizes(app):
    segment = make_segment("Newer", kind="static")
    segment.created_at = NOW - timedelta(minutes=62)  # 14:28
    segment.size = 2
    for minutes, action in ((61, "ADD"), (61, "ADD"), (61, "ADD"), (12, "REMOVE")):
        _event(segment.id, action, NOW - timedelta(minutes=minutes))
    db.session.commit()
    history = stats.size_history(segment, now=NOW)
    assert history["step"] == "5 minutes"
    points = history["points"]
    assert points[0] == (datetime(2026, 12, 5, 14, 25), 3)
    assert points[-1] == (NOW, 2)
    assert dict(points)[datetime(2026, 12, 5, 15, 15)] == 2  # the removal at 15:18
    assert dict(points)[datetime(2026, 12, 5, 15, 10)] == 3


def test_a_segment_created_today_gets_hourly_sizes_from_its_events(app):
    segment = make_segment("New", kind="static")
    segment.created_at = NOW - timedelta(hours=3, minutes=10)
    segment.size = 4
    for minutes, action in ((185, "ADD"), (180, "ADD"), (178, "ADD"), (100, "ADD"),
                            (95, "REMOVE"), (20, "ADD")):
        _event(segment.id, action, NOW - timedelta(minutes=minutes))
    db.session.commit()
    history = stats.size_history(segment, now=NOW)
    assert history["step"] == "hour"
    # Each hour from the one it was created in, with the size at its end; then now.
    assert history["points"] == [(datetime(2026, 12, 5, 12), 3), (datetime(2026, 12, 5, 13), 3),
                                 (datetime(2026, 12, 5, 14), 3), (datetime(2026, 12, 5, 15), 4),
                                 (NOW, 4)]
    segment.created_at = NOW - timedelta(days=10)
    db.session.commit()
    assert stats.size_history(segment, now=NOW)["step"] == "day"


def test_overlap_counts_each_region_exactly(app):
    people = [make_member() for _ in range(8)]
    a, b, c = (make_segment(n, kind="static") for n in ("A", "B", "C"))
    memberships = {a: [0, 1, 2, 3], b: [2, 3, 4, 5], c: [3, 5, 6]}
    for segment, who in memberships.items():
        add_to_list(segment, *[people[i] for i in who])
    result = stats.overlap([a, b, c])
    assert result.regions == {1: 2, 3: 1, 7: 1, 2: 1, 6: 1, 4: 1}
    assert result.union == 7 and result.in_all(1) == 4 and result.in_all(3) == 2
    two = stats.overlap([a, b])
    assert two.regions == {1: 2, 3: 2, 2: 2}
    with pytest.raises(ValueError):
        stats.overlap([a])


# --- the pages -------------------------------------------------------------------------------

def test_overview_charts_with_accessible_text_and_labels_in_place(client, auth):
    auth.login("support")
    member = make_member()
    big = make_segment("Everyone")  # matches every member
    make_segment("Quiet", kind="static")
    db.session.add(Override(segment_id=big.id, member_id=member.id, status="block",
                            actor_label="t"))
    db.session.add(Override(segment_id=big.id, member_id=make_member().id, status="add",
                            actor_label="t", expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    page = client.get("/")
    body = _text(page)
    assert page.status_code == 200
    assert 'id="changes-chart"' in body and 'id="sizes-chart"' in body
    assert "<title id=\"changes-per-day-title\">Membership changes per day" in body
    assert re.search(r"<desc id=\"changes-per-day-desc\">Members added and removed per day "
                     r"from .*: 1 added and 0 removed in all", body)
    assert "Show as a table" in body and "<th scope=\"col\">Day (UTC)</th>" in body
    assert 'class="chart-line series-0"' in body and ">Everyone</a> <strong>1</strong>" in body
    assert "css/charts.css" in body
    # The overrides note belongs to the segments card, not under Rewards.
    segments_card = body[body.index("stat-label\">Segments"):body.index("stat-label\">Offers")]
    rewards_card = body[body.index("stat-label\">Rewards"):body.index("</section>",
                                                                       body.index("Rewards"))]
    assert "1 active override" in segments_card and "override" not in rewards_card
    assert 'class="overview-search"' in body


def test_overview_leaves_out_archived_segments_and_says_when_nothing_changed(client, auth):
    auth.login("support")
    old = make_segment("Archived big", kind="static")
    add_to_list(old, make_member())
    archive_segment(old, actor="t")
    db.session.query(MembershipEvent).delete()
    db.session.commit()
    body = _text(client.get("/"))
    largest = body[body.index('id="sizes-chart"'):body.index("Latest membership changes")]
    assert "Archived big" not in largest  # neither in the chart nor in the largest list
    assert "No membership changes in 30 days" in body
    assert "1 archived" in body


def test_segment_page_of_a_new_segment_shows_hourly_sizes(client, auth):
    auth.login("support")
    segment = make_segment("Born today", kind="static")
    add_to_list(segment, make_member(), make_member())
    body = _text(client.get(f"/segments/{segment.id}"))
    assert "Members since it was created, every 5 minutes (UTC)" in body
    assert "<title id=\"segment-size-title\">Size of Born today over time</title>" in body
    assert "<th scope=\"col\">Time (UTC)</th>" in body
    assert 'class="chart-line series-0"' in body
    assert f'href="/segments/overlap?segments={segment.id}"' in body


def test_overlap_page_fragment_and_refusals(client, auth):
    auth.login("support")
    people = [make_member() for _ in range(5)]
    a = make_segment("Alpha", kind="static", customer_segment_id="crm-alpha")
    b = make_segment("Beta", kind="static")
    add_to_list(a, *people[:3])
    add_to_list(b, *people[2:])
    empty = client.get("/segments/overlap")
    assert empty.status_code == 200 and "Choose two or three segments" in _text(empty)
    one = client.get(f"/segments/overlap?segments={a.id}")
    assert one.status_code == 200 and "Choose a second segment" in _text(one)
    page = client.get(f"/segments/overlap?segments={a.id}&segments=beta&segments=")
    body = _text(page)
    assert page.status_code == 200 and "<html" in body
    assert "5 members in at least one, 1 in both" in body
    assert "Only in Alpha</td><td class=\"num\">2</td>" in body
    assert "Only in Beta</td><td class=\"num\">2</td>" in body
    assert "In both</td><td class=\"num\">1</td>" in body
    assert "<title id=\"venn-title\">Overlap of Alpha, Beta</title>" in body
    fragment = client.get("/segments/overlap?segments=crm-alpha&segments=%23" + str(b.id),
                          headers=HX)
    text = _text(fragment)
    assert fragment.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<section id="overlap-result"')
    assert "In both" in text
    unknown = client.get("/segments/overlap?segments=Alpha&segments=nope", headers=HX)
    assert unknown.status_code == 422
    assert "No segment has the id, customer segment id or name “nope”." in _text(unknown)
    twice = client.get(f"/segments/overlap?segments={a.id}&segments=alpha")
    assert twice.status_code == 422 and "Alpha is chosen twice" in _text(twice)
    four = client.get("/segments/overlap?segments=a&segments=b&segments=c&segments=d")
    assert four.status_code == 422 and "at most 3 segments" in _text(four)


def test_overlap_of_three_segments_draws_seven_regions(client, auth):
    auth.login("marketer")
    people = [make_member() for _ in range(4)]
    segments = [make_segment(n, kind="static") for n in ("One", "Two", "Three")]
    for segment in segments:
        add_to_list(segment, *people)
    body = _text(client.get("/segments/overlap?" + "&".join(
        f"segments={s.id}" for s in segments)))
    assert body.count("<circle") == 3
    assert "In all three</td><td class=\"num\">4</td>" in body
    assert "In One and Two, not Three</td><td class=\"num\">0</td>" in body
    assert len(re.findall(r"<text x=", body)) == 7
    assert db.session.get(Segment, segments[0].id) is not None
