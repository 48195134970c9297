"""Typed SQLAlchemy 2.0 models for every entity of SPEC §2."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.timeutil import utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")

ROLES = ("admin", "marketer", "support")
# SQLite reuses the highest rowid after a delete unless AUTOINCREMENT is on; ids named in
# events and history must never be handed to a new row.
AUTOINCREMENT = {"sqlite_autoincrement": True}


def new_uuid() -> str:
    """A new random member id."""
    return str(uuid.uuid4())


class User(UserMixin, db.Model):
    """A person who signs in to the dashboard."""

    __tablename__ = "users"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised to end every session of this user (sign-out, password change, deactivation).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Two-factor sign-in: the TOTP secret (set while enrolling, kept once confirmed), when it
    # was switched on, and the last time step a code was accepted for (no replays).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def totp_enabled(self) -> bool:
        """Whether sign-in asks this user for a code after the password."""
        return self.totp_enabled_at is not None

    @property
    def label(self) -> str:
        """How the user is named in history and audit lines."""
        return self.name or self.email


class PasswordReset(db.Model):
    """A one-time password-reset link an admin made for a user; only its hash is kept."""

    __tablename__ = "password_resets"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class RecoveryCode(db.Model):
    """A one-time two-factor recovery code of a user, stored as a SHA-256 hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class LoginThrottle(db.Model):
    """Failed sign-ins of one client address or account (used when Redis is not configured)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ApiToken(db.Model):
    """A machine credential: shown once, stored as a SHA-256 hash, with a role."""

    __tablename__ = "api_tokens"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    created_by: Mapped[User | None] = relationship()

    @property
    def label(self) -> str:
        """How the token is named in history and audit lines."""
        return f"token {self.name}"


class Member(db.Model):
    """A loyalty membership."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    birthday: Mapped[date | None] = mapped_column(Date, index=True)
    tier: Mapped[str] = mapped_column(String(32), default="bronze", index=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    xp: Mapped[int] = mapped_column(BigInteger, default=0)
    coins: Mapped[int] = mapped_column(BigInteger, default=0)
    badges: Mapped[list[str]] = mapped_column(JSONType, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def attributes(self) -> dict[str, Any]:
        """The member as the targeting core and the API see it."""
        return member_attributes(self)


def member_attributes(member: Any) -> dict[str, Any]:
    """The member (a Member, or a row of the members table) as the targeting core and the
    API see it."""
    return {
        "id": member.id,
        "external_id": member.external_id,
        "email": member.email,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "tier": member.tier,
        "points": member.points,
        "xp": member.xp,
        "coins": member.coins,
        "badges": list(member.badges or []),
        "custom_fields": dict(member.custom_fields or {}),
        "created_at": member.created_at.isoformat() + "Z" if member.created_at else None,
        "updated_at": member.updated_at.isoformat() + "Z" if member.updated_at else None,
    }


class Segment(db.Model):
    """A static list or a dynamic rule over member attributes."""

    __tablename__ = "segments"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), index=True)
    customer_segment_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    url: Mapped[str | None] = mapped_column(String(2000))
    include: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    exclude: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    size: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    archived_by_label: Mapped[str | None] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User | None] = relationship(foreign_keys=[updated_by_id])
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    tag_rows: Mapped[list[SegmentTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="SegmentTag.tag")

    @property
    def tags(self) -> list[str]:
        """The segment's tags, sorted."""
        return sorted(t.tag for t in self.tag_rows)

    def definition(self) -> dict[str, Any]:
        """The definition as the targeting core takes it."""
        return {"kind": self.kind, "include": list(self.include or []),
                "exclude": list(self.exclude or [])}


class SegmentTag(db.Model):
    """A label on a segment, for organising and filtering many segments."""

    __tablename__ = "segment_tags"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class SegmentDependency(db.Model):
    """Segment A has a `segment` criterion naming segment B (for where-used and cycles)."""

    __tablename__ = "segment_dependencies"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), primary_key=True, index=True)


class SegmentMembership(db.Model):
    """Materialized effective membership: lists and overrides applied.

    For a static segment these rows are its member list (via='list'); for a dynamic one they
    are who the rules and overrides put in (via='rule' or 'override').
    """

    __tablename__ = "segment_memberships"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    via: Mapped[str] = mapped_column(String(16), default="rule")
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_segment_memberships_member", "member_id", "segment_id"),)


class SegmentSizeSnapshot(db.Model):
    """A segment's size at a point in time, for the size-over-time chart."""

    __tablename__ = "segment_size_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    day: Mapped[date] = mapped_column(Date)
    size: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("segment_id", "day", name="uq_segment_size_day"),
                      AUTOINCREMENT)


class Override(db.Model):
    """An admin's pin of a member into (add) or out of (block) a rule-managed segment."""

    __tablename__ = "overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text, default="")
    reference_id: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    status_change_timestamp: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    expired_applied_at: Mapped[datetime | None] = mapped_column(DateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    segment: Mapped[Segment] = relationship()
    member: Mapped[Member] = relationship()

    __table_args__ = (UniqueConstraint("segment_id", "member_id", name="uq_override_pair"),
                      AUTOINCREMENT)


class OverrideHistory(db.Model):
    """Every add, block, reset and expiry of an override; kept after reset."""

    __tablename__ = "override_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(Integer, index=True)
    segment_name: Mapped[str] = mapped_column(String(200), default="")
    member_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text, default="")
    reference_id: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    status_change_timestamp: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Offer(db.Model):
    """Something a member may see; who sees it is decided by its audiences."""

    __tablename__ = "offers"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    category: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    publish_at: Mapped[datetime | None] = mapped_column(DateTime)
    expire_at: Mapped[datetime | None] = mapped_column(DateTime)
    discontinued: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_activation: Mapped[bool] = mapped_column(Boolean, default=False,
                                                      server_default=sa_false())
    must_fulfill_within_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    audiences: Mapped[list[Audience]] = relationship(
        back_populates="offer", cascade="all, delete-orphan", order_by="Audience.id")
    limits: Mapped[list[OfferLimit]] = relationship(
        back_populates="offer", cascade="all, delete-orphan", passive_deletes=True,
        order_by="OfferLimit.id")


class Audience(db.Model):
    """One condition on an offer: age_within, in_all_segments or in_any_segment."""

    __tablename__ = "audiences"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    audience_type: Mapped[str] = mapped_column(String(32))
    configuration: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    offer: Mapped[Offer] = relationship(back_populates="audiences")
    segment_links: Mapped[list[AudienceSegment]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True)


class AudienceSegment(db.Model):
    """Index of the segments an audience names, so a used segment cannot be deleted."""

    __tablename__ = "audience_segments"

    audience_id: Mapped[int] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), primary_key=True, index=True)


class OfferLimit(db.Model):
    """A cap on an offer's activations or awards, over all members or per member (SPEC §8).

    `configuration` is {limit, window} as webapp.targeting.limits.validate_limit returns it."""

    __tablename__ = "offer_limits"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), index=True)
    limit_type: Mapped[str] = mapped_column(String(32))
    configuration: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    offer: Mapped[Offer] = relationship(back_populates="limits")


class OfferActivation(db.Model):
    """A member activated an offer; usable for one award until `expires_at` (if any)."""

    __tablename__ = "offer_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    activated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime)
    actor_label: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_offer_activations_member", "member_id", "offer_id"),
                      Index("ix_offer_activations_offer", "offer_id"),
                      # the global counts as of a past moment (webapp.services.replay)
                      Index("ix_offer_activations_offer_at", "offer_id", "activated_at"),
                      AUTOINCREMENT)


class OfferFulfillment(db.Model):
    """An award of an offer to a member, idempotent by the caller's external id."""

    __tablename__ = "offer_fulfillments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255))
    activation_id: Mapped[int | None] = mapped_column(
        ForeignKey("offer_activations.id", ondelete="SET NULL"))
    fulfilled_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_label: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (UniqueConstraint("offer_id", "external_id",
                                       name="uq_offer_fulfillments_external"),
                      Index("ix_offer_fulfillments_member", "member_id", "offer_id"),
                      # the global counts as of a past moment (webapp.services.replay)
                      Index("ix_offer_fulfillments_offer_at", "offer_id", "fulfilled_at"),
                      AUTOINCREMENT)


class OfferUsage(db.Model):
    """How many activations and awards an offer has made over all members (the global
    limits' counts; written with each activation and fulfillment, under the offer's lock)."""

    __tablename__ = "offer_usage"

    offer_id: Mapped[int] = mapped_column(
        ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    activations: Mapped[int] = mapped_column(BigInteger, default=0)
    awards: Mapped[int] = mapped_column(BigInteger, default=0)


class Reward(db.Model):
    """Something a member may redeem for points, limited to required segments."""

    __tablename__ = "rewards"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    category: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    publish_at: Mapped[datetime | None] = mapped_column(DateTime)
    expire_at: Mapped[datetime | None] = mapped_column(DateTime)
    discontinued: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    required_segments: Mapped[list[Segment]] = relationship(
        secondary="reward_required_segments", order_by="Segment.name")


class RewardRequiredSegment(db.Model):
    """A reward requires membership in this segment."""

    __tablename__ = "reward_required_segments"

    reward_id: Mapped[int] = mapped_column(
        ForeignKey("rewards.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), primary_key=True, index=True)


class RewardRedemption(db.Model):
    """A member redeemed a reward for its points; cancelling refunds them."""

    __tablename__ = "reward_redemptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reward_id: Mapped[int | None] = mapped_column(
        ForeignKey("rewards.id", ondelete="SET NULL"))
    reward_name: Mapped[str] = mapped_column(String(200), default="")
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="redeemed")
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    actor_label: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_reward_redemptions_member", "member_id", "reward_id"),
                      Index("ix_reward_redemptions_reward", "reward_id"), AUTOINCREMENT)


class Upload(db.Model):
    """One static-list upload: its dry-run report, its progress and its outcome."""

    __tablename__ = "uploads"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    mode: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    identifier_column: Mapped[str | None] = mapped_column(String(255))
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    progress: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    stored_path: Mapped[str | None] = mapped_column(String(1000))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)

    segment: Mapped[Segment] = relationship()


class SegmentJob(db.Model):
    """A large rule change of a dynamic segment, applied in the background in one transaction.

    `definition` is the kind/include/exclude being applied and `changes` the whole edit (the
    attributes the request gave), applied at once with the membership when the job commits;
    until then the segment keeps its stored definition and members. `to_add` and `to_remove`
    are the counts estimated when the change was asked for, `done` how many have moved.
    """

    __tablename__ = "segment_jobs"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    base_version: Mapped[int] = mapped_column(Integer)
    to_add: Mapped[int] = mapped_column(BigInteger, default=0)
    to_remove: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    segment: Mapped[Segment] = relationship()

    @property
    def total(self) -> int:
        """How many members the change moves (estimated when it was asked for)."""
        return (self.to_add or 0) + (self.to_remove or 0)


class MembershipEvent(db.Model):
    """ADD or REMOVE of a member in a segment, with its cause. Append-only."""

    __tablename__ = "membership_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(8))
    segment_id: Mapped[int] = mapped_column(Integer)
    segment_name: Mapped[str] = mapped_column(String(200))
    customer_segment_id: Mapped[str | None] = mapped_column(String(255))
    member_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(16))
    cause: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    upload_id: Mapped[int | None] = mapped_column(Integer)
    override_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    # PostgreSQL: member_id is only looked up by equality (hash: half the upkeep of a btree
    # of 36-character ids) and upload_id follows the id order (BRIN); migration 0003.
    __table_args__ = (
        Index("ix_membership_events_segment", "segment_id", "id"),
        Index("ix_membership_events_member_id", "member_id", postgresql_using="hash"),
        Index("ix_membership_events_upload_id", "upload_id", postgresql_using="brin",
              postgresql_with={"autosummarize": "on"}),
    )


class Activity(db.Model):
    """Something a member did (a purchase, a visit …), recorded by the client: what segments'
    activity criteria count and sum (webapp.targeting.behaviour). The amount is kept in whole
    ten-thousandths so sums are exact; the client's external id is unique, so a retried
    record is recognised and never counted twice."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    amount_e4: Mapped[int | None] = mapped_column(BigInteger)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    external_id: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16), default="api")
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("external_id", name="uq_activities_external_id"),
        # the amount too, so a member's sums over a window are read from the index alone
        Index("ix_activities_member", "member_id", "type", "occurred_at", "amount_e4"),
        Index("ix_activities_type_time", "type", "occurred_at", "member_id"),
    )


class ActivityImport(db.Model):
    """One CSV import of member activities: its dry-run report, its progress and its outcome.

    Not an `Upload`: it names no segment and cannot be undone (activities are facts, and a
    repeated external id is recognised instead), so it keeps its own small history."""

    __tablename__ = "activity_imports"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="analyzing")
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    progress: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    stored_path: Mapped[str | None] = mapped_column(String(1000))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class RowHistory(db.Model):
    """Every version of a member and of the catalog (segment definitions, offers, audiences,
    offer limits, rewards, required segments), written by database triggers (migration
    0017_history) in the changing transaction: what as-of decisions replay."""

    __tablename__ = "row_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(String(40))
    row_key: Mapped[str] = mapped_column(String(80))
    member_id: Mapped[str | None] = mapped_column(String(36))
    op: Mapped[str] = mapped_column(String(1))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    changed_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        Index("ix_row_history_member", "member_id", "id"),
        Index("ix_row_history_row", "table_name", "row_key", "id"),
        Index("ix_row_history_changed", "table_name", "changed_at"),
        AUTOINCREMENT,
    )


class HistoryMeta(db.Model):
    """When the row history begins (one row)."""

    __tablename__ = "history_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    begins_at: Mapped[datetime] = mapped_column(DateTime)


class AttributeDefinition(db.Model):
    """A declared custom field of members: its JSON type, allowed values and words for people.

    The registry drives the segment builder (declared fields by name, with the operators and
    value pickers that fit) and checks member writes (webapp/services/attributes.py).
    """

    __tablename__ = "attribute_definitions"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    allowed_values: Mapped[list[Any] | None] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(Text, default="")
    example: Mapped[Any | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    updated_by_label: Mapped[str] = mapped_column(String(200), default="")


class AuditEntry(db.Model):
    """Who changed what, with a readable before/after. Append-only."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id", "id"),)


class Webhook(db.Model):
    """A subscription to membership events, delivered signed to a URL."""

    __tablename__ = "webhooks"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_filter: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookDelivery(db.Model):
    """One attempt series to deliver one event to one webhook."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_queue", "webhook_id", "status", "id"),
                      AUTOINCREMENT)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class CatalogVersion(db.Model):
    """One row whose token database triggers replace whenever the visibility catalog changes.

    Offers, audiences, rewards, required segments and segment definitions: see migration
    0002_visibility. Never written by the application; read by webapp/visibility.py.
    """

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
