"""Command-line tools: `flask users`, `flask tokens`, `flask demo`, `flask segments`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.extensions import db
from webapp.models import ROLES

users_cli = AppGroup("users", help="Manage dashboard users.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")
demo_cli = AppGroup("demo", help="Demo data.")
segments_cli = AppGroup("segments", help="Segment membership maintenance and uploads.")
events_cli = AppGroup("events", help="Membership events and webhook delivery.")
activities_cli = AppGroup("activities", help="Member activities: CSV imports.")
history_cli = AppGroup("history", help="The history as-of decisions replay.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="")
@click.option("--password", envvar="BEACON_PASSWORD", default=None,
              help="Read from BEACON_PASSWORD; otherwise prompted, or read from standard input.")
def create_user_command(email: str, role: str, name: str, password: str | None) -> None:
    """Create a dashboard user; the password comes from a prompt or standard input."""
    from webapp.services.users import UserError, create_user

    if password is None:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\n")
    try:
        user = create_user(email, password, role, name=name, actor="cli")
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {user.email} ({user.role}).")


@tokens_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
def create_token_command(name: str, role: str) -> None:
    """Create an API token and print it once on standard output."""
    from webapp.services.tokens import create_token

    _, raw = create_token(name.strip() or "token", role)
    click.echo(raw)


@demo_cli.command("seed")
@click.option("--members", "member_count", default=20_000, show_default=True, type=int)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has members.")
@click.option("--seed", "random_seed", default=20261122, show_default=True, type=int)
def seed_command(member_count: int, if_empty: bool, random_seed: int) -> None:
    """Fill the database with deterministic, realistic demo data and demo users."""
    from webapp.demo import seed

    result = seed(member_count, random_seed=random_seed, only_if_empty=if_empty,
                  progress=lambda text: click.echo(text, err=True))
    if result is None:
        click.echo("The database already has data; nothing seeded.")
        return
    click.echo(f"Seeded {result['members']:,} members, {result['segments']} segments, "
               f"{result['offers']} offers and {result['rewards']} rewards "
               f"in {result['seconds']:.1f} s.")


@demo_cli.command("users")
def demo_users_command() -> None:
    """Create the demo users (one per role) if missing and print their logins."""
    from webapp.demo import DEMO_PASSWORD, ensure_demo_users

    for user in ensure_demo_users():
        click.echo(f"  {user.role:<9} {user.email:<24} password: {DEMO_PASSWORD}")


@segments_cli.command("refresh")
@click.option("--watch", is_flag=True,
              help="Keep running: refresh again at each next time-dependent change (at most "
                   "--max-sleep seconds apart).")
@click.option("--max-sleep", default=600, show_default=True, type=click.IntRange(1, 86_400),
              help="With --watch, the longest wait between two refreshes.")
def refresh_command(watch: bool, max_sleep: int) -> None:
    """Apply override expiries and re-evaluate time-dependent rules (ages, relative dates,
    activity windows), recording the events; say when the next change is due."""
    import time as clock

    from webapp.timeutil import utcnow

    while True:
        next_at = _refresh_once()
        if not watch:
            return
        wait = max_sleep if next_at is None else min(
            max_sleep, max(0.0, (next_at - utcnow()).total_seconds()) + 0.001)
        db.session.remove()
        clock.sleep(wait)


def _refresh_once():
    """One refresh pass (one commit); prints what changed and returns the next due moment."""
    from webapp.services.membership import Cause, next_refresh_at, refresh_all
    from webapp.services.overrides import apply_expiries

    expired = apply_expiries(actor="flask segments refresh")
    deltas = refresh_all(Cause("rule", "flask segments refresh", {"reason": "refresh"}))
    db.session.commit()
    added = sum(d.added for d in deltas)
    removed = sum(d.removed for d in deltas)
    click.echo(f"Expiries: {expired} override{'s' if expired != 1 else ''} expired; "
               "their members now follow the rules again.")
    click.echo(f"Rules: {len(deltas)} segment{'s' if len(deltas) != 1 else ''} changed, "
               f"+{added:,} / −{removed:,} members.")
    next_at = next_refresh_at()
    if next_at is None:
        click.echo("Next change: none of the rules depends on time.")
    else:
        click.echo(f"Next change: {next_at.isoformat()}Z (an activity window, age or date "
                   "moves on); refresh then.")
    return next_at


@segments_cli.command("verify")
def verify_command() -> None:
    """Compare materialized membership with live evaluation and list every difference."""
    from webapp.services.membership import verify_all

    problems = verify_all()
    if not problems:
        click.echo("All segments match: dynamic ones their rules, every size its rows.")
        return
    for p in problems:
        click.echo(f"segment {p['segment_id']} {p['name']!r}: cached size {p['cached_size']}, "
                   f"actual {p['actual_size']}; missing {p['missing']}; extra {p['extra']}")
    raise SystemExit(1)


@history_cli.command("prune")
@click.option("--days", type=click.IntRange(1, 100_000), default=None,
              help="Keep this many days (default: HISTORY_RETENTION_DAYS).")
def history_prune_command(days: int | None) -> None:
    """Drop the history older than the retention; as-of moments before it are then refused."""
    from flask import current_app

    from webapp.services.replay import prune

    days = days or int(current_app.config.get("HISTORY_RETENTION_DAYS") or 0)
    if not days:
        raise click.UsageError("HISTORY_RETENTION_DAYS is 0 (keep everything): give --days N "
                               "to prune anyway")
    gone = prune(days)
    db.session.commit()
    click.echo(f"History: {gone:,} version{'s' if gone != 1 else ''} older than {days:,} "
               f"day{'s' if days != 1 else ''} dropped.")


def register(app: Flask) -> None:
    """Attach the command groups to the app."""
    for group in (users_cli, tokens_cli, demo_cli, segments_cli, events_cli, activities_cli,
                  history_cli):
        app.cli.add_command(group)
