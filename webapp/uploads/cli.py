"""`flask segments upload SEGMENT FILE --mode add|remove|replace [--dry-run]`."""

from __future__ import annotations

import getpass
import shutil
import sys
from pathlib import Path

import click

from webapp.cli import segments_cli
from webapp.extensions import db
from webapp.services.lookup import find_segment


def _print_report(report: dict, mode: str) -> None:
    """The dry-run report as aligned text lines."""
    effect = report["effect"]
    column = report["column"]
    lines = [
        ("Identifier column", f"{column['label']} ({column['detected_by']})"),
        ("Rows", report["rows"]),
        ("Valid identifiers", report["valid"]),
        ("Invalid rows", report["invalid"]),
        ("Duplicates in file", report["duplicates"]),
        ("Unknown members", report["unknown"]),
        ("Already on the list", report["on_list"]),
        ("Effect", f"+{effect['added']:,} added, −{effect['removed']:,} removed, "
                   f"{effect['unchanged']:,} unchanged"),
        ("List size", f"{report['current_size']:,} -> {effect['new_size']:,}"),
    ]
    click.echo(f"Dry run ({mode}):")
    for label, value in lines:
        shown = f"{value:,}" if isinstance(value, int) else value
        click.echo(f"  {label:<20} {shown}")
    for problem in report["problems"][:20]:
        click.echo(f"  line {problem['line']}: {problem['problem'].replace('_', ' ')}: "
                   f"{problem['identifier']!s} ({problem['detail']})")
    if report["problem_count"] > 20:
        click.echo(f"  … {report['problem_count'] - 20:,} more problems"
                   + (f" in {report['problems_file']}" if report.get("problems_file") else ""))


@segments_cli.command("upload")
@click.argument("segment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(("add", "remove", "replace")), required=True)
@click.option("--dry-run", is_flag=True, help="Print the report; change nothing.")
@click.option("--column", default=None, help="Identifier column: header name or number.")
@click.option("--header/--no-header", default=None, help="Whether the first row is a header "
              "(detected when not given).")
@click.option("--problems", "problems_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write every problem row to this CSV file.")
def upload_command(segment: str, file: Path, mode: str, dry_run: bool, column: str | None,
                   header: bool | None, problems_out: Path | None) -> None:
    """Upload a member list to a static segment: dry-run report, then apply (one transaction).

    SEGMENT is the segment id, its customer segment id or its name. Exits non-zero when
    nothing could be applied (file refused, no known member, limit, dynamic segment).
    """
    from webapp.models import Upload
    from webapp.services import uploads as service
    from webapp.services.upload_parser import FileRejected

    target = find_segment(segment, by_name=True)
    if target is None:
        raise click.ClickException(f"No segment {segment!r} (id, customer segment id or name).")
    stored = service.new_file_path(target.id)
    shutil.copyfile(file, stored)
    try:
        upload = service.create_upload(target, stored_path=stored, filename=file.name,
                                       mode=mode, actor_label=f"cli:{getpass.getuser()}",
                                       column=column, header=header)
    except service.UploadError as exc:
        stored.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from exc
    upload.status = "applying" if not dry_run else "analyzing"
    db.session.commit()
    upload_id = upload.id
    # The runner lock tells the dashboard this upload is alive (see service.runner).
    with service.runner(upload_id):
        with click.progressbar(length=1000, label="Uploading", file=sys.stderr,
                               show_eta=False) as bar:
            shown = [0]

            def advance(value: int) -> None:
                bar.update(value - shown[0])
                shown[0] = value

            try:
                report = service.process(upload, apply=not dry_run,
                                         progress=service.Progress(upload_id, advance),
                                         problems_file=problems_out)
            except (FileRejected, service.UploadError) as exc:
                db.session.rollback()
                if getattr(exc, "report", None):
                    _print_report(exc.report, mode)
                service._finish(upload_id, "failed" if not dry_run else "rejected",
                                error=f"{exc} Nothing was changed.")
                stored.unlink(missing_ok=True)
                raise click.ClickException(f"{exc} Nothing was changed.") from exc
            advance(1000)
        _print_report(report, mode)
        upload = db.session.get(Upload, upload_id)
        upload.report = report
        upload.identifier_column = report["column"]["label"][:255]
        upload.total = report["rows"]
        upload.progress = 1000
        if dry_run:
            db.session.rollback()
            service._finish(upload_id, "discarded", report=report)
            stored.unlink(missing_ok=True)
            click.echo("Dry run only: nothing was changed.")
            if report["refusal"]:
                raise click.ClickException(report["refusal"])
            return
        upload.status = "applied"
        upload.finished_at = service.utcnow()
        db.session.commit()
    stored.unlink(missing_ok=True)
    applied = report["applied"]
    click.echo(f"Applied upload #{upload_id}: +{applied['added']:,} / −{applied['removed']:,}; "
               f"{target.name} now has {applied['size']:,} members.")
