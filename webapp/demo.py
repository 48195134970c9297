"""Deterministic, realistic demo data: members, segments, offers, rewards, overrides, users."""

from __future__ import annotations

import json
import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, insert, select

from webapp.bulk import insert_rows
from webapp.extensions import db
from webapp.models import (
    Activity,
    Audience,
    AudienceSegment,
    Member,
    Offer,
    Reward,
    Segment,
    SegmentDependency,
    SegmentMembership,
    User,
)
from webapp.timeutil import utcnow

FIRST = ("olivia", "liam", "emma", "noah", "ava", "oliver", "sophia", "elijah", "mia", "lucas",
         "amelia", "mateo", "harper", "levi", "evelyn", "ethan", "aria", "james", "chloe", "leo",
         "nora", "hugo", "ines", "yusuf", "zara", "kenji", "priya", "omar", "lena", "tomas")
LAST = ("smith", "garcia", "muller", "rossi", "nguyen", "kowalski", "silva", "dubois", "khan",
        "jensen", "murphy", "tanaka", "oconnor", "novak", "haddad", "larsen", "costa", "weber",
        "ali", "brown", "moreau", "fischer", "santos", "kim", "patel", "ivanova", "lopez")
CITIES = ("London", "Manchester", "Paris", "Berlin", "Madrid", "Lisbon", "Dublin", "Amsterdam",
          "Milan", "Warsaw")
BADGES = ("early_adopter", "reviewer", "streak_30", "referrer", "app_user", "eco_friendly",
          "night_owl", "banned")
TIER_WEIGHTS = (("bronze", 60), ("silver", 25), ("gold", 11), ("platinum", 4))


def demo_password() -> str:
    """The demo users' password: BEACON_DEMO_PASSWORD, else generated once into instance/."""
    import os

    if os.environ.get("BEACON_DEMO_PASSWORD"):
        return os.environ["BEACON_DEMO_PASSWORD"]
    path = Path(current_app.instance_path) / "demo_password"
    if not path.exists():
        path.write_text("demo-" + secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


class _DemoPassword:
    def __str__(self) -> str:
        return demo_password()

    def __format__(self, spec: str) -> str:
        return format(demo_password(), spec)


DEMO_PASSWORD = _DemoPassword()
DEMO_USERS = (("admin@beacon.test", "admin", "Ada Admin"),
              ("marketer@beacon.test", "marketer", "Mira Marketer"),
              ("support@beacon.test", "support", "Sam Support"))


def ensure_demo_users() -> list[User]:
    """Create the three demo users when missing; returns them."""
    from webapp.passwords import hash_password

    users = []
    password_hash = None
    for email, role, name in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            password_hash = password_hash or hash_password(demo_password())
            user = User(email=email, role=role, name=name, password_hash=password_hash)
            db.session.add(user)
        users.append(user)
    db.session.commit()
    return users


def _member_rows(count: int, rng: random.Random, now: datetime):
    tiers = [t for t, _ in TIER_WEIGHTS]
    weights = [w for _, w in TIER_WEIGHTS]
    start = date(1940, 1, 1).toordinal()
    span = date(2010, 12, 31).toordinal() - start
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if n % 997 == 0:
            birthday = date(rng.choice((1948, 1960, 1972, 1984, 1996, 2000, 2008)), 2, 29)
        elif rng.random() < 0.06:
            birthday = None
        else:
            birthday = date.fromordinal(start + rng.randrange(span))
        tier = rng.choices(tiers, weights)[0]
        boost = {"bronze": 1, "silver": 3, "gold": 8, "platinum": 20}[tier]
        points = min(int(rng.paretovariate(1.3) * 150 * boost) - 150, 2_000_000)
        badges = sorted({b for b in BADGES[:-1] if rng.random() < 0.12})
        if rng.random() < 0.004:
            badges.append("banned")
        custom = {"city": rng.choice(CITIES), "opted_out": rng.random() < 0.08}
        if rng.random() < 0.03 or tier == "platinum" and rng.random() < 0.3:
            custom["vip"] = True
        if rng.random() < 0.4:
            custom["favourite_store"] = rng.randrange(1, 120)
        if rng.random() < 0.2:
            custom["preferences"] = {"channel": rng.choice(("email", "sms", "push"))}
        created = now - timedelta(days=rng.randrange(0, 1100), seconds=rng.randrange(86400))
        yield {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "external_id": f"M{n + 1:07d}",
            "email": f"{first}.{last}.{n + 1}@example.com" if rng.random() > 0.03 else None,
            "birthday": birthday,
            "tier": tier,
            "points": max(points, 0),
            "xp": int(rng.expovariate(1 / 2500)),
            "coins": rng.randrange(0, 500),
            "badges": badges,
            "custom_fields": custom,
            "created_at": created,
            "updated_at": created + timedelta(days=rng.randrange(0, 30)),
        }


MEMBER_COLUMNS = ("id", "external_id", "email", "birthday", "tier", "points", "xp", "coins",
                  "badges", "custom_fields", "created_at", "updated_at")


def _insert_members(rows: list[dict]) -> None:
    """Bulk insert at driver speed: COPY on PostgreSQL, executemany of tuples on SQLite."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        insert_rows(connection, "members", MEMBER_COLUMNS, (
            (r["id"], r["external_id"], r["email"], r["birthday"], r["tier"], r["points"],
             r["xp"], r["coins"], json.dumps(r["badges"]), json.dumps(r["custom_fields"]),
             r["created_at"], r["updated_at"]) for r in rows))
        return
    if connection.dialect.name != "sqlite":
        db.session.execute(insert(Member.__table__), rows)
        return
    stamp = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite DATETIME
    insert_rows(connection, "members", MEMBER_COLUMNS, (
        (r["id"], r["external_id"], r["email"],
         r["birthday"].isoformat() if r["birthday"] else None, r["tier"], r["points"],
         r["xp"], r["coins"], json.dumps(r["badges"]), json.dumps(r["custom_fields"]),
         r["created_at"].strftime(stamp), r["updated_at"].strftime(stamp)) for r in rows))


ITEMS = (("coffee", 250, 600), ("tea", 200, 450), ("sandwich", 450, 1200))  # cents
ACTIVITY_COLUMNS = ("member_id", "type", "occurred_at", "amount_e4", "properties",
                    "external_id", "source", "recorded_at")
ACTIVITY_DAYS = 90


def _member_activities(member_id: str, rng: random.Random, now: datetime):
    """One member's purchases and visits over the last ~90 days (None for most members):
    (type, occurred_at, amount_e4, properties). Regulars buy often and mostly coffee;
    some visitors stopped coming a while ago."""
    habit = rng.random()
    if habit < 0.55:
        return
    regular = habit > 0.9
    home = f"store-{rng.randrange(1, 13):02d}"
    purchases = rng.randrange(8, 30) if regular else rng.randrange(0, 6)
    last_day = rng.choice((ACTIVITY_DAYS, 70)) if not regular else ACTIVITY_DAYS
    for _ in range(purchases):
        name, low, high = ITEMS[0] if regular and rng.random() < 0.6 else rng.choice(ITEMS)
        at = now - timedelta(days=rng.randrange(ACTIVITY_DAYS), seconds=rng.randrange(86400))
        store = home if rng.random() < 0.8 else f"store-{rng.randrange(1, 13):02d}"
        yield "purchase", at, rng.randrange(low, high) * 100, {"item": name, "store": store}
    lapsed = not regular and rng.random() < 0.3
    for _ in range(rng.randrange(1, 8)):
        back = rng.randrange(61, last_day + 1) if lapsed else rng.randrange(ACTIVITY_DAYS)
        yield "visit", now - timedelta(days=back, seconds=rng.randrange(86400)), None, {
            "store": home}


def _seed_activities(member_ids: list[str], rng: random.Random, now: datetime) -> int:
    """Purchases and visits of the demo members, inserted in bulk; how many."""
    connection = db.session.connection()
    sqlite = connection.dialect.name == "sqlite"
    stamp = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite DATETIME

    def when(moment: datetime) -> object:
        return moment.strftime(stamp) if sqlite else moment

    rows = [(member_id, kind, when(at), amount, json.dumps(props), "", "demo", when(now))
            for member_id in member_ids
            for kind, at, amount, props in _member_activities(member_id, rng, now) or ()]
    rows = [(*row[:5], f"demo-{n:07d}", *row[6:]) for n, row in enumerate(rows, 1)]
    if connection.dialect.name in ("sqlite", "postgresql"):
        insert_rows(connection, "activities", ACTIVITY_COLUMNS, rows)
    else:
        db.session.execute(insert(Activity.__table__), [dict(zip(ACTIVITY_COLUMNS, r,
                                                                 strict=True)) for r in rows])
    db.session.commit()
    return len(rows)


DYNAMIC = (
    ("Gold and platinum", "Members in the two top tiers.", "crm-top-tiers",
     [{"field": "tier", "operator": "in", "value": ["gold", "platinum"]}], []),
    ("High rollers", "10,000 points or more.", None,
     [{"field": "points", "operator": ">=", "value": 10000}], []),
    ("VIPs", "Flagged VIP in the CRM.", "crm-vip",
     [{"field": "custom_fields.vip", "operator": "equals", "value": True}], []),
    ("Under 25", "Young members, for the student offers.", None,
     [{"field": "age", "operator": "<", "value": 25}], []),
    ("Seniors 65+", "Members aged 65 or more.", None,
     [{"field": "age", "operator": ">=", "value": 65}], []),
    ("Joined in the last 90 days", "New members to welcome.", None,
     [{"field": "created_at", "operator": ">=", "value": {"days_ago": 90}}], []),
    ("Londoners", "City is London.", None,
     [{"field": "custom_fields.city", "operator": "equals", "value": "London"}], []),
    ("Engaged reviewers", "Active reviewers with real XP, not opted out.", None,
     [{"field": "badges", "operator": "contains", "value": "reviewer"},
      {"field": "xp", "operator": ">=", "value": 3000}],
     [{"field": "custom_fields.opted_out", "operator": "equals", "value": True}]),
    ("Marketable gold", "Gold or platinum, 1,000+ points, except banned or opted out.", None,
     [{"field": "tier", "operator": "in", "value": ["gold", "platinum"]},
      {"field": "points", "operator": ">=", "value": 1000}],
     [{"field": "badges", "operator": "contains", "value": "banned"},
      {"field": "custom_fields.opted_out", "operator": "equals", "value": True}]),
    ("Rich gold or new VIPs", "Gold with 1,000+ points, or VIPs who joined in the last 90 "
     "days: one segment with groups instead of two helper segments.", None,
     [{"any": [{"all": [{"field": "tier", "operator": "equals", "value": "gold"},
                        {"field": "points", "operator": ">=", "value": 1000}]},
               {"all": [{"field": "custom_fields.vip", "operator": "equals", "value": True},
                        {"field": "created_at", "operator": ">=",
                         "value": {"days_ago": 90}}]}]}], []),
)
COFFEE = [{"field": "properties.item", "operator": "equals", "value": "coffee"}]
BEHAVIOUR = (
    ("Coffee regulars", "3+ coffees and 50+ spent on purchases in the last 30 days.", None,
     [{"field": "activity.count", "operator": ">=", "value": 3,
       "activity": {"type": "purchase", "window": {"days": 30}, "where": COFFEE}},
      {"field": "activity.sum", "operator": ">=", "value": 50,
       "activity": {"type": "purchase", "window": {"days": 30}}}], []),
    ("Lapsed visitors", "Visited the stores before, but not in the last 60 days.", None,
     [{"field": "activity.count", "operator": ">=", "value": 1,
       "activity": {"type": "visit"}},
      {"field": "activity.count", "operator": "equals", "value": 0,
       "activity": {"type": "visit", "window": {"days": 60}}}], []),
    ("Big spenders this month", "60+ spent on purchases in the last 30 days.", None,
     [{"field": "activity.sum", "operator": ">=", "value": 60,
       "activity": {"type": "purchase", "window": {"days": 30}}}], []),
)
STATIC = (
    ("Beta testers", "Pushed by the CRM for the app beta.", "crm-beta-2026", 0.01),
    ("Store staff", "Employees, uploaded by HR.", None, 0.004),
    ("Fraud watchlist", "Accounts under review by the risk team.", "risk-watchlist", 0.002),
)


def seed(member_count: int = 20_000, *, random_seed: int = 20261122,
         only_if_empty: bool = False,
         progress: Callable[[str], None] = lambda _: None) -> dict | None:
    """Create demo users and data; with only_if_empty, skip when members exist."""
    from webapp.services.membership import Cause, apply_delta, refresh_segment

    started = time.perf_counter()
    ensure_demo_users()
    if only_if_empty and db.session.scalar(select(func.count()).select_from(Member)):
        return None
    rng = random.Random(random_seed)
    now = utcnow().replace(microsecond=0)
    batch: list[dict] = []
    member_ids: list[str] = []
    for i, row in enumerate(_member_rows(member_count, rng, now), 1):
        batch.append(row)
        member_ids.append(row["id"])
        if len(batch) == 50_000:
            _insert_members(batch)
            batch.clear()
            progress(f"members: {i:,} / {member_count:,}")
    if batch:
        _insert_members(batch)
    db.session.commit()
    progress(f"members: {member_count:,} inserted")
    activities = _seed_activities(member_ids, random.Random(random_seed + 1), now)
    progress(f"activities: {activities:,} inserted")

    actor = "demo seed"
    segments: dict[str, Segment] = {}
    for name, description, csid, include, exclude in DYNAMIC + BEHAVIOUR:
        segments[name] = Segment(name=name, description=description, kind="dynamic",
                                 customer_segment_id=csid, include=include, exclude=exclude,
                                 updated_by_label=actor)
    for name, description, csid, _ in STATIC:
        segments[name] = Segment(name=name, description=description, kind="static",
                                 customer_segment_id=csid, updated_by_label=actor)
    db.session.add_all(segments.values())
    db.session.flush()
    vip_gold = Segment(name="Gold VIPs", description="VIPs who are also gold or platinum.",
                       kind="dynamic", updated_by_label=actor,
                       include=[{"field": "segment", "operator": "in",
                                 "value": [segments["VIPs"].id]},
                                {"field": "segment", "operator": "in",
                                 "value": [segments["Gold and platinum"].id]}])
    db.session.add(vip_gold)
    db.session.flush()
    segments["Gold VIPs"] = vip_gold
    for dep in ("VIPs", "Gold and platinum"):
        db.session.add(SegmentDependency(segment_id=vip_gold.id,
                                         depends_on_id=segments[dep].id))

    by_external_id = select(Member.id).order_by(Member.external_id)
    for name, _, _, share in STATIC:
        sample = max(3, int(member_count * share))
        step = max(1, member_count // sample)
        ids = list(db.session.scalars(by_external_id.offset(rng.randrange(step)).limit(
            sample * step)))[::step]
        apply_delta(segments[name], add=ids, via="list",
                    cause=Cause("static_list", actor, {"reason": "demo data"}))

    db.session.flush()
    for name, segment in segments.items():
        if segment.kind == "dynamic":
            refresh_segment(segment, Cause("rule", actor, {"reason": "demo data"}), now,
                            cascade=False)
            progress(f"segment {name}: {segment.size:,} members")
    db.session.commit()
    _seed_overrides(segments, now)

    _seed_offers_and_rewards(segments, now)
    db.session.commit()
    story = _seed_history(now)
    if story:
        progress(f"history: {', '.join(story)} went from silver to gold 3 days ago "
                 "(try As of on their member pages)")
    return {"members": member_count, "activities": activities, "segments": len(segments),
            "offers": db.session.scalar(select(func.count()).select_from(Offer)),
            "rewards": db.session.scalar(select(func.count()).select_from(Reward)),
            "seconds": time.perf_counter() - started}


HISTORY_DAYS = 30


def _seed_history(now: datetime) -> list[str]:
    """A past for the demo, so as-of decisions have something to show: the demo's data is
    dated 30 days back in the history (its rows, list events, activities as recorded when
    they happened), and three gold members were silver, with 600 fewer points, until 3 days
    ago. Returns their external ids."""
    from webapp.models import Activity, HistoryMeta, MembershipEvent, OverrideHistory, RowHistory

    past = now - timedelta(days=HISTORY_DAYS)
    h = RowHistory.__table__
    db.session.execute(h.update().values(changed_at=past))
    meta = db.session.get(HistoryMeta, 1)
    if meta is None:
        db.session.add(HistoryMeta(id=1, begins_at=past))
    else:
        meta.begins_at = past
    for model, column in ((MembershipEvent, "created_at"), (OverrideHistory, "created_at")):
        table = model.__table__
        db.session.execute(table.update().where(table.c[column] >= past).values(
            {column: past}))
    a = Activity.__table__
    db.session.execute(a.update().where(a.c.occurred_at <= now).values(
        recorded_at=a.c.occurred_at))
    changed = list(db.session.execute(select(Member.id, Member.external_id).where(
        Member.tier == "gold", Member.points >= 1600).order_by(Member.external_id).limit(3)))
    for member_id, _ in changed:
        first = db.session.execute(select(h.c.id, h.c.data).where(
            h.c.member_id == member_id, h.c.table_name == "members").order_by(h.c.id)
        ).first()
        if first is None:
            continue
        data = dict(first.data)
        db.session.execute(h.insert().values(
            table_name="members", row_key=member_id, member_id=member_id, op="U",
            data=dict(data), changed_at=now - timedelta(days=3)))
        data.update(tier="silver", points=int(data["points"]) - 600)
        db.session.execute(h.update().where(h.c.id == first.id).values(data=data))
    db.session.commit()
    return [external_id for _, external_id in changed]


def _seed_overrides(segments: dict[str, Segment], now: datetime) -> None:
    """A few realistic pins through the overrides service: adds of members the rules leave
    out, blocks of members the rules put in, one with an expiry."""
    from webapp.services.overrides import set_override

    admin = db.session.scalar(select(User).where(User.role == "admin"))
    member_in = select(Member).join(SegmentMembership, SegmentMembership.member_id == Member.id)
    pins = (("VIPs", "add", "Board member's guest list", "TICKET-1042", None),
            ("VIPs", "add", "Press partner, CRM flag missing", "TICKET-1077", None),
            ("Marketable gold", "block", "Chargeback dispute under review", "RISK-311", None),
            ("Londoners", "block", "Moved to Paris; CRM update pending", None, 14),
            ("High rollers", "add", "Points migration from legacy system", "MIG-9", None))
    for offset, (name, status, reason, reference, days) in enumerate(pins):
        segment = segments[name]
        in_segment = member_in.where(SegmentMembership.segment_id == segment.id)
        query = (in_segment if status == "block" else select(Member).where(
            Member.id.not_in(select(SegmentMembership.member_id).where(
                SegmentMembership.segment_id == segment.id))))
        member = db.session.scalar(query.order_by(Member.external_id).offset(offset).limit(1))
        if member is None:
            continue
        set_override(segment, member, status, description=reason, reference_id=reference,
                     expires_at=now + timedelta(days=days) if days else None,
                     actor=admin.label if admin else "demo seed",
                     actor_id=admin.id if admin else None)


def _seed_offers_and_rewards(segments: dict[str, Segment], now: datetime) -> None:
    day = timedelta(days=1)

    def offer(name, category, description, audiences, **kw):
        o = Offer(name=name, category=category, description=description,
                  external_id=f"OFF-{len(offers) + 101}",
                  publish_at=kw.get("publish", now - 30 * day),
                  expire_at=kw.get("expire", now + 60 * day),
                  discontinued=kw.get("discontinued", False))
        for audience_type, configuration in audiences:
            a = Audience(audience_type=audience_type, configuration=configuration)
            for sid in configuration.get("segments", []):
                a.segment_links.append(AudienceSegment(segment_id=sid))
            o.audiences.append(a)
        offers.append(o)

    s = {name: seg.id for name, seg in segments.items()}
    offers: list[Offer] = []
    offer("Double points weekend", "points", "2x points on every purchase this weekend.", [])
    offer("Wine club tasting", "events", "Free tasting at partner wine bars (18+ only).",
          [("age_within", {"minimum_age": 18, "maximum_age": None})])
    offer("Student 20% off", "discount", "For members under 25.",
          [("age_within", {"minimum_age": 16, "maximum_age": 24})])
    offer("Gold lounge access", "experience", "Airport lounge passes for top tiers.",
          [("in_all_segments", {"segments": [s["Gold and platinum"]]})])
    offer("VIP preview night", "events", "Early access to the winter collection.",
          [("in_any_segment", {"segments": [s["VIPs"], s["Gold VIPs"]]})])
    offer("London pop-up", "events", "Pop-up store in Shoreditch.",
          [("in_all_segments", {"segments": [s["Londoners"]]}),
           ("age_within", {"minimum_age": 18, "maximum_age": None})])
    offer("Welcome bonus", "points", "500 bonus points in your first 90 days.",
          [("in_any_segment", {"segments": [s["Joined in the last 90 days"]]})])
    offer("Senior Tuesdays", "discount", "15% off on Tuesdays.",
          [("age_within", {"minimum_age": 65, "maximum_age": None})])
    offer("Beta app perks", "app", "Extra coins for testing the new app.",
          [("in_all_segments", {"segments": [s["Beta testers"]]})])
    offer("Summer sale (ended)", "discount", "Last summer's sale.", [],
          publish=now - 120 * day, expire=now - 40 * day)
    offer("Spring launch (scheduled)", "discount", "Starts next month.", [],
          publish=now + 20 * day, expire=now + 80 * day)
    offer("Retired partner deal", "partner", "Partner left the programme.", [],
          discontinued=True)
    offer("Free pastry with your coffee", "food", "For our coffee regulars: a pastry on "
          "the house with your next coffee.",
          [("in_any_segment", {"segments": [s["Coffee regulars"]]})])
    db.session.add_all(offers)

    def reward(name, category, points, required, **kw):
        r = Reward(name=name, category=category, points=points,
                   external_id=f"RW-{len(rewards) + 201}",
                   publish_at=kw.get("publish", now - 60 * day),
                   expire_at=kw.get("expire", now + 120 * day),
                   discontinued=kw.get("discontinued", False),
                   description=kw.get("description", ""))
        r.required_segments = [segments[n] for n in required]
        rewards.append(r)

    rewards: list[Reward] = []
    reward("Free coffee", "food", 150, [])
    reward("Cinema ticket", "entertainment", 900, [])
    reward("Spa day", "experience", 12_000, ["Gold and platinum"])
    reward("Weekend in Lisbon", "travel", 60_000, ["Gold and platinum", "VIPs"])
    reward("Beta hoodie", "merch", 500, ["Beta testers"])
    reward("Staff tote bag", "merch", 0, ["Store staff"])
    reward("Reviewer's gift box", "merch", 2_000, ["Engaged reviewers"])
    reward("Old mug (discontinued)", "merch", 300, [], discontinued=True)
    reward("Concert tickets (expired)", "entertainment", 4_000, [], expire=now - 5 * day)
    db.session.add_all(rewards)
