"""`flask activities import FILE [--dry-run] [--problems OUT]`."""

from __future__ import annotations

import getpass
import shutil
import sys
from pathlib import Path

import click

from webapp.cli import activities_cli
from webapp.extensions import db

SHOWN_PROBLEMS = 20


def print_report(report: dict, *, applied: bool) -> None:
    """The counts and the first problems, as the dashboard shows them."""
    counts = report["applied"]["counts"] if applied else report["counts"]
    click.echo("Applied:" if applied else "Dry run:")
    for label, value in (("Lines", report["rows"]),
                         ("Recorded" if applied else "Would record", counts["recorded"]),
                         ("Duplicates", counts["duplicate"]), ("Invalid", counts["invalid"])):
        click.echo(f"  {label:<14} {value:,}")
    for p in report["problems"][:SHOWN_PROBLEMS]:
        click.echo(f"  line {p['line']}, {p['column']}: {p['detail']}")
    if report["problem_count"] > SHOWN_PROBLEMS:
        click.echo(f"  … {report['problem_count'] - SHOWN_PROBLEMS:,} more problems"
                   + (f" in {report['problems_file']}" if report.get("problems_file") else ""))
    if applied:
        for s in report["applied"]["segments"]:
            click.echo(f"  segment {s['name']!r}: +{s['added']:,} / −{s['removed']:,} members")


@activities_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the report; record nothing.")
@click.option("--problems", "problems_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write every problem line to this CSV file.")
def import_command(file: Path, dry_run: bool, problems_out: Path | None) -> None:
    """Import member activities from a CSV file: the dry-run counts and problems, then (without
    --dry-run) every valid line recorded in one transaction, source "upload".

    Columns: member, activity_type (or type), occurred_at, external_id, and optionally
    amount, properties (a JSON object) and properties.<name>. Exits non-zero when the file is
    refused or the import fails (then nothing was recorded).
    """
    from webapp.models import ActivityImport
    from webapp.services import activity_imports as service
    from webapp.services.upload_parser import FileRejected

    stored = service.new_file_path()
    shutil.copyfile(file, stored)
    item = service.create(stored_path=stored, filename=file.name,
                          actor_label=f"cli:{getpass.getuser()}")
    item.status = "analyzing" if dry_run else "applying"
    db.session.commit()
    import_id = item.id
    with service.runner(import_id, service.RUNNER_KIND):
        with click.progressbar(length=1000, label="Importing", file=sys.stderr,
                               show_eta=False) as bar:
            shown = [0]

            def advance(value: int) -> None:
                bar.update(value - shown[0])
                shown[0] = value

            try:
                report = service.process(stored, apply=not dry_run, actor=item.actor_label,
                                         progress=service.ImportProgress(import_id, advance),
                                         problems_file=problems_out)
            except FileRejected as exc:
                db.session.rollback()
                _end(import_id, "rejected" if dry_run else "failed", stored, error=str(exc))
                raise click.ClickException(f"{exc} Nothing was recorded.") from exc
            except Exception as exc:
                db.session.rollback()
                _end(import_id, "failed", stored, error="The import failed; nothing was "
                     "recorded.")
                raise click.ClickException(f"The import failed ({exc}); nothing was recorded.") \
                    from exc
            advance(1000)
        if dry_run:
            db.session.rollback()
        item = db.session.get(ActivityImport, import_id)
        item.report, item.rows, item.progress = report, report["rows"], 1000
        item.status = "discarded" if dry_run else "applied"
        item.finished_at = service.utcnow()
        db.session.commit()
    stored.unlink(missing_ok=True)
    print_report(report, applied=not dry_run)
    if dry_run:
        click.echo("Dry run only: nothing was recorded.")
    else:
        click.echo(f"Applied import #{import_id}.")


def _end(import_id: int, status: str, stored: Path, *, error: str) -> None:
    """Store a refused or failed outcome and drop the copied file."""
    from webapp.models import ActivityImport
    from webapp.services import activity_imports as service

    item = db.session.get(ActivityImport, import_id)
    item.status, item.error, item.finished_at = status, error, service.utcnow()
    db.session.commit()
    stored.unlink(missing_ok=True)
