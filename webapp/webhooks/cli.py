"""`flask events deliver`: the webhook delivery worker for setups without (or beside) RQ."""

from __future__ import annotations

import time

import click

from webapp.cli import events_cli


@events_cli.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until interrupted.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds to sleep between passes with --loop.")
@click.option("--webhook", "webhook_id", type=int, default=None,
              help="Only this webhook (by id).")
def deliver_command(loop: bool, interval: float, webhook_id: int | None) -> None:
    """Create deliveries for new membership events and send those due (one pass, or --loop)."""
    from webapp.extensions import db
    from webapp.services.webhook_delivery import deliver

    try:
        while True:
            try:
                result = deliver(webhook_id=webhook_id)
            except Exception as exc:  # a database hiccup must not end the worker
                if not loop:
                    raise
                db.session.rollback()
                click.echo(f"Delivery pass failed ({exc.__class__.__name__}: {exc}); "
                           "trying again.", err=True)
            else:
                if not loop or result.created or result.posts or result.pruned:
                    click.echo(f"{result.created:,} new deliveries; {result.posts:,} POSTs: "
                               f"{result.delivered:,} delivered, {result.retrying:,} to retry, "
                               f"{result.failed:,} failed"
                               + (f"; {result.pruned:,} old log rows pruned." if result.pruned
                                  else "."))
                if not loop:
                    return
            db.session.remove()  # a fresh session per pass: no stale reads between passes
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


@events_cli.command("prune")
@click.option("--days", type=click.IntRange(0, 36500), default=None,
              help="Keep this many days of delivered and failed deliveries "
                   "(default: WEBHOOK_LOG_RETENTION_DAYS, 30; 0 keeps everything).")
def prune_command(days: int | None) -> None:
    """Delete delivered and failed webhook deliveries older than the retention."""
    from webapp.services.webhook_delivery import prune, settings

    kept = settings()["retention_days"] if days is None else days
    if kept == 0:
        click.echo("Retention is 0 days: the delivery log is kept forever; nothing pruned.")
        return
    click.echo(f"{prune(days=kept):,} delivered or failed deliveries older than "
               f"{kept} days pruned.")
