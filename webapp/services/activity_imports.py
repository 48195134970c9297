"""CSV imports of member activities: dry run, line-level report, then apply in one transaction.

The file is a CSV with a header row naming its columns: ``member`` (member id, external id or
email), ``activity_type`` (or ``type``), ``occurred_at`` (ISO 8601), ``external_id``, and
optionally ``amount`` (a number, at most four decimals, a dot for the decimals),
``properties`` (a JSON object) and ``properties.<name>`` columns (each non-empty cell becomes
that property, as text). The files are read with the member-list parser's checks
(`webapp.services.upload_parser`: size, encoding, binary files, delimiters).

`check` (the dry run) writes nothing: every line is checked as `webapp.services.activities`
checks an API item, its member looked up and its external id compared with the file's earlier
lines and the stored activities, giving what applying would do: *would record*, *duplicate*,
*invalid*, and a problem per line ("line 7, amount: amount has at most 4 decimal places").
`apply` hands the valid lines to `activities.record(..., source="upload", commit=False)` in
chunks, re-evaluates the members its activities may move (`activities.due_after`) once at the
end, and commits once: nothing is half-applied, and a failure changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from webapp.extensions import db
from webapp.models import Activity, ActivityImport, Segment
from webapp.services import activities
from webapp.services.rules import program_timezone
from webapp.services.upload_parser import (
    FIELD_LIMIT,
    FileRejected,
    FileShape,
    decoded_text,
    inspect,
    spreadsheet_safe,
)
from webapp.services.uploads import (
    JOB_HOURS,
    Progress,
    freshest,
    max_bytes,
    runner,
    runner_gone,
    upload_folder,
)
from webapp.targeting.paths import key_problem
from webapp.timeutil import utcnow

COLUMNS = ("member", "activity_type", "occurred_at", "amount", "external_id", "properties")
REQUIRED = ("member", "activity_type", "occurred_at", "external_id")
SYNONYMS = {"type": "activity_type"}
PROPERTY_PREFIX = "properties."
CHUNK = 1000
SAMPLE_PROBLEMS = 50
SYNC_BYTES = 2 * 1024 * 1024
KEEP_HOURS = 24
RUNNING = ("analyzing", "applying")
RUNNER_KIND = "activity-import"
PROBLEMS_SUFFIX = ".problems.csv"
COLUMN_HELP = ("The first row names the columns: member, activity_type (or type), occurred_at "
               "and external_id, and optionally amount, properties (a JSON object) and "
               "properties.<name> columns.")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
PHASES = ((0, "Reading the file"), (50, "Going through the lines"),
          (900, "Moving members in and out of segments"), (1000, "Done"))


class ImportRefused(Exception):
    """An import request that is refused; the message says why and nothing changed."""


class ImportProgress(Progress):
    """The progress of an activity import (see `webapp.services.uploads.Progress`)."""

    table = ActivityImport.__table__
    column = "progress"
    key = "beacon:activity-import-progress:{}"
    live: dict[int, int] = {}


def phase_label(progress: int) -> str:
    """What a progress value (thousandths) means, for the progress bar's caption."""
    label = PHASES[0][1]
    for start, name in PHASES:
        if progress >= start:
            label = name
    return label


def live_progress(item: ActivityImport) -> int:
    """The freshest known progress of an import, in thousandths."""
    return freshest(ImportProgress, item.id, item.status in RUNNING, item.progress or 0)


# --- The file's layout -------------------------------------------------------------------------


@dataclass
class Layout:
    """Which column holds what: the attributes and the `properties.<name>` columns."""

    header: list[str]
    columns: dict[str, int]
    properties: list[tuple[str, int]] = field(default_factory=list)


def _column_name(cell: str) -> str:
    return re.sub(r"[\s\-]+", "_", cell.strip().lower())


def read_header(cells: list[str]) -> Layout:
    """The layout a header row describes; FileRejected names what is wrong with it."""
    columns: dict[str, int] = {}
    properties: list[tuple[str, int]] = []
    named: dict[str, int] = {}
    for index, raw in enumerate(cells):
        cell = raw.strip()
        if not cell:
            raise FileRejected(f"Column {index + 1} of the header row has no name. "
                               f"{COLUMN_HELP}")
        if cell.lower().startswith(PROPERTY_PREFIX):
            key = cell[len(PROPERTY_PREFIX):].strip()
            problem = key_problem(key)
            if problem:
                raise FileRejected(f"Column {index + 1} ({cell!r}) names no usable property: "
                                   f"{problem}.")
            name = PROPERTY_PREFIX + key
        else:
            name = SYNONYMS.get(_column_name(cell), _column_name(cell))
            if name not in COLUMNS:
                raise FileRejected(f"Column {index + 1} of the header row, {cell!r}, is not a "
                                   f"column of an activity. {COLUMN_HELP}")
        if name in named:
            raise FileRejected(f"Columns {named[name] + 1} and {index + 1} of the header row "
                               f"both name {name}.")
        named[name] = index
        if name.startswith(PROPERTY_PREFIX):
            properties.append((name[len(PROPERTY_PREFIX):], index))
        else:
            columns[name] = index
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        names = ", ".join(missing)
        raise FileRejected(f"The header row has no {names} column{'s' if len(missing) > 1 else ''}"
                           f" (it has {', '.join(repr(c.strip()) for c in cells)}). "
                           f"{COLUMN_HELP}")
    return Layout(header=[c.strip() for c in cells], columns=columns, properties=properties)


def parse_amount(cell: str) -> tuple[Any, str | None]:
    """A CSV amount cell as the number an API item would carry, or why it is not one."""
    if not NUMBER.fullmatch(cell):
        hint = (" Use a dot for the decimals and no thousands separator (1234.50)."
                if re.fullmatch(r"[+-]?[\d.,\s']+", cell) else "")
        return None, f"amount {cell!r} is not a number.{hint}"
    exact = Decimal(cell)
    if "." not in cell:
        return int(exact), None
    number = float(exact)
    if abs(exact) < 10**14 and exact == exact.quantize(Decimal("0.0001")) \
            and Decimal(repr(number)) != exact:
        return None, (f"amount {cell} has more significant digits than can be kept exactly "
                      "(at most 15)")
    return number, None


def row_item(row: list[str], layout: Layout) -> tuple[dict[str, Any], dict[str, str]]:
    """One CSV row as an activity item for `activities.record`, and the errors found in its
    cells (by column) before the item's own checks."""
    errors: dict[str, str] = {}
    if len(row) != len(layout.header):
        return {}, {"row": f"the line has {len(row)} field{'s' if len(row) != 1 else ''} but "
                           f"the header row has {len(layout.header)} (a stray delimiter or "
                           "quote?)"}
    item: dict[str, Any] = {}
    for name, index in layout.columns.items():
        cell = row[index].strip()
        if name == "amount":
            if cell:
                item["amount"], problem = parse_amount(cell)
                if problem:
                    errors["amount"] = problem
        elif name == "properties":
            if cell:
                item["properties"], problem = _json_object(cell)
                if problem:
                    errors["properties"] = problem
        else:
            item[name] = cell
    for key, index in layout.properties:
        cell = row[index].strip()
        if not cell:
            continue
        props = item.setdefault("properties", {})
        if not isinstance(props, dict):
            continue
        if key in props:
            errors[PROPERTY_PREFIX + key] = (f"property {key} is given twice: in the "
                                             "properties column and its own column")
            continue
        props[key] = cell
    return item, errors


def _json_object(cell: str) -> tuple[Any, str | None]:
    try:
        value = json.loads(cell)
    except ValueError as exc:
        return None, f"properties is not valid JSON ({exc.msg} at character {exc.pos + 1})"
    if not isinstance(value, dict):
        return None, "properties is a JSON object, like {\"item\": \"coffee\"}"
    return value, None


# --- Reading the file --------------------------------------------------------------------------


@dataclass
class Line:
    """One data line of the file: its number, the item it holds and the errors of its cells."""

    number: int
    item: dict[str, Any]
    errors: dict[str, str]


def open_file(path: Path) -> tuple[FileShape, Layout]:
    """Check the file as a whole and read its header; FileRejected says what is wrong."""
    size, limit = path.stat().st_size, max_bytes()
    if size > limit:
        raise FileRejected(f"The file is {size_text(size)}; the limit is {size_text(limit)}.")
    try:
        shape = inspect(path, max_bytes=limit, header=True)
    except FileRejected as exc:  # the member-list wording, said of activities
        raise FileRejected(str(exc).replace(" or a text file with one identifier per line", "")
                           .replace("no identifiers", "no activities")) from None
    if not shape.delimiter:
        raise FileRejected("The file has a single column: an activity needs several, separated "
                           f"by commas (or semicolons or tabs). {COLUMN_HELP}")
    return shape, read_header(shape.header)


def size_text(size: int) -> str:
    """A file size for people: '2.5 MB', '12 KB', '900 bytes'."""
    if size >= 1_048_576:
        return f"{size / 1_048_576:,.1f} MB"
    if size >= 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size:,} bytes"


def read_lines(path: Path, shape: FileShape, layout: Layout, *, size: int = CHUNK,
               progress: Callable[[float], None] | None = None) -> Iterator[list[Line]]:
    """The data lines in batches; blank lines are skipped."""
    text = decoded_text(path)
    total = max(text.count("\n"), 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=shape.delimiter)
    del text
    batch: list[Line] = []
    previous, header_seen = 0, False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = previous + 1
            previous = reader.line_num
            if "field limit" in str(exc):
                raise FileRejected(f"Line {line}: a field is longer than {FIELD_LIMIT:,} "
                                   "characters; probably a quote that is never closed.") from None
            batch.append(Line(line, {}, {"row": f"not readable as CSV: {exc}"}))
            continue
        line = previous + 1
        previous = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if not header_seen:
            header_seen = True
            continue
        item, errors = row_item(row, layout)
        batch.append(Line(line, item, errors))
        if len(batch) >= size:
            if progress is not None:
                progress(min(previous / total, 1.0))
            yield batch
            batch = []
    if batch:
        yield batch


# --- Checking and applying ---------------------------------------------------------------------


@dataclass
class Tally:
    """What the lines come to: counts, problems in line order, types and members seen."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"recorded": 0, "duplicate": 0, "invalid": 0})
    rows: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    problem_count: int = 0
    types: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    members: set[str] = field(default_factory=set)
    first_line: dict[str, int] = field(default_factory=dict)
    writer: Any = None
    #: the file's own header for each column (a report names the column as the file does)
    headers: dict[str, str] = field(default_factory=dict)

    pending: list[tuple[int, list[Any]]] = field(default_factory=list)

    def problem(self, line: Line, kind: str, column: str, detail: str) -> None:
        """Note one problem of a line; `flush` reports a batch's problems in line order."""
        external_id = str(line.item.get("external_id") or "")[:80]
        column = self.headers.get(column, column)
        self.pending.append((line.number, [line.number, external_id, kind, column, detail]))

    def flush(self) -> None:
        """Report the batch's problems in line order: all to the file, the first to the page."""
        self.pending.sort(key=lambda entry: entry[0])
        for _, cells in self.pending:
            self.problem_count += 1
            if len(self.problems) < SAMPLE_PROBLEMS:
                self.problems.append(dict(zip(
                    ("line", "external_id", "problem", "column", "detail"), cells, strict=True)))
            if self.writer is not None:
                self.writer.writerow([spreadsheet_safe(v) for v in cells])
        self.pending.clear()

    def invalid(self, line: Line, errors: dict[str, str]) -> None:
        self.counts["invalid"] += 1
        for column, detail in errors.items():
            self.problem(line, "invalid", column, detail)

    def duplicate(self, line: Line, stored: bool) -> None:
        self.counts["duplicate"] += 1
        ext = line.item.get("external_id", "").strip()
        first = self.first_line.get(ext)
        if first is not None and first != line.number:
            detail = f"external id {ext} is also on line {first}; it is recorded once"
        elif stored:
            detail = f"an activity with external id {ext} is already recorded"
        else:
            detail = f"external id {ext} is repeated"
        self.problem(line, "duplicate", "external_id", detail)

    def recorded(self, line: Line, member_id: str) -> None:
        self.counts["recorded"] += 1
        self.types[str(line.item["activity_type"]).strip()] += 1
        self.members.add(member_id)


def _stored_ids(external_ids: list[str]) -> set[str]:
    """Which of these external ids already name a stored activity."""
    column = Activity.__table__.c.external_id
    found: set[str] = set()
    for start in range(0, len(external_ids), CHUNK):
        found.update(db.session.scalars(sa.select(column).where(
            column.in_(external_ids[start:start + CHUNK]))))
    return found


def _check_batch(lines: list[Line], tally: Tally, tz: str) -> None:
    """The dry run of a batch: what `activities.record` would make of each line."""
    parsed: list[tuple[Line, dict[str, Any]]] = []
    for line in lines:
        tally.rows += 1
        row, errors = activities.parse_item(line.item, tz) if line.item else (None, {})
        errors = {**errors, **line.errors}
        if errors or row is None:
            tally.invalid(line, errors)
        else:
            parsed.append((line, row))
    members = activities.resolve_members(row["member"] for _, row in parsed)
    stored = _stored_ids(sorted({row["external_id"] for _, row in parsed}))
    for line, row in parsed:
        member_id = members.get(row["member"])
        if member_id is None:
            tally.invalid(line, {"member": f"no member has the id, external id or email "
                                           f"{row['member']!r}"})
            continue
        ext = row["external_id"]
        if ext in tally.first_line or ext in stored:
            tally.duplicate(line, ext in stored)
            tally.first_line.setdefault(ext, line.number)
            continue
        tally.first_line[ext] = line.number
        tally.recorded(line, member_id)


def _apply_batch(lines: list[Line], tally: Tally, tz: str, actor: str, now: datetime,
                 due: activities.Due) -> None:
    """Record a batch's valid lines through `activities.record` (no commit, no refresh); the
    members its activities may move added to `due` (see `activities.due_after`)."""
    valid = []
    for line in lines:
        tally.rows += 1
        if line.errors or not line.item:
            _, errors = activities.parse_item(line.item, tz) if line.item else (None, {})
            tally.invalid(line, {**errors, **line.errors})
        else:
            valid.append(line)
    if not valid:
        return
    done = activities.record([line.item for line in valid], actor=actor, source="upload",
                             now=now, refresh=False, commit=False)
    for line, outcome in zip(valid, done.outcomes, strict=True):
        ext = str(line.item.get("external_id") or "").strip()
        if outcome.status == "invalid":
            tally.invalid(line, outcome.errors)
        elif outcome.status == "duplicate":
            tally.duplicate(line, ext not in tally.first_line)
            tally.first_line.setdefault(ext, line.number)
        else:
            tally.first_line[ext] = line.number
            tally.recorded(line, outcome.member_id)
    activities.due_after(done.new, now, into=due)


def process(path: Path, *, apply: bool, actor: str, progress: Progress | None = None,
            problems_file: Path | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Check (and with `apply`, record without committing) every line of a file; the report.

    Raises FileRejected when the file as a whole cannot be read."""
    progress = progress or Progress(None)
    now = now or utcnow()
    tz = program_timezone()
    shape, layout = open_file(path)
    progress.set(50)
    tally = Tally(headers={name: layout.header[index] for name, index in layout.columns.items()})
    due = activities.Due()
    handle = problems_file.open("w", newline="", encoding="utf-8") if problems_file else None
    try:
        if handle is not None:
            tally.writer = csv.writer(handle)
            tally.writer.writerow(["line", "external_id", "problem", "column", "detail"])
        span = 850 if apply else 900
        for batch in read_lines(path, shape, layout,
                                progress=lambda f: progress.set(50 + int(f * span))):
            if apply:
                _apply_batch(batch, tally, tz, actor, now, due)
            else:
                _check_batch(batch, tally, tz)
            tally.flush()
    finally:
        if handle is not None:
            handle.close()
    if tally.rows == 0:
        raise FileRejected("The file has no activities: it holds only a header row.")
    report = _report(shape, layout, tally, problems_file)
    if apply:
        progress.set(900)
        deltas = activities.refresh_due(due, actor=actor, source="upload", now=now)
        report["applied"] = {"counts": dict(tally.counts), "segments": _segments_moved(deltas)}
    progress.set(990)
    return report


def _report(shape: FileShape, layout: Layout, tally: Tally,
            problems_file: Path | None) -> dict[str, Any]:
    types = sorted(tally.types.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "file": {"delimiter": shape.delimiter, "bom": shape.bom,
                 "line_endings": shape.line_endings, "columns": layout.header},
        "rows": tally.rows, "counts": dict(tally.counts), "members": len(tally.members),
        "types": [{"type": t, "count": n} for t, n in types[:20]],
        "more_types": max(0, len(types) - 20),
        "problems": tally.problems, "problem_count": tally.problem_count,
        "problems_file": str(problems_file) if problems_file and tally.problem_count else None,
    }


def _segments_moved(deltas: list[Any]) -> list[dict[str, Any]]:
    """The segments the recorded activities moved members in or out of, with their names."""
    moved = [d for d in deltas if d.changed]
    names = dict(db.session.execute(sa.select(Segment.id, Segment.name).where(
        Segment.id.in_([d.segment_id for d in moved]))).tuples().all()) if moved else {}
    return [{"segment_id": d.segment_id, "name": names.get(d.segment_id, ""),
             "added": d.added, "removed": d.removed} for d in moved]


# --- Imports from the dashboard and the command line -------------------------------------------


def import_folder() -> Path:
    """Where imported files and their problem reports are kept."""
    folder = upload_folder() / "activities"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_file_path() -> Path:
    """A fresh path to store an imported file."""
    return import_folder() / f"activities-{secrets.token_hex(8)}.csv"


def problems_path(item: ActivityImport) -> Path | None:
    """The problems CSV of an import, when it has one."""
    path = (item.report or {}).get("problems_file")
    return Path(path) if path and Path(path).exists() else None


def create(*, stored_path: Path, filename: str, actor_label: str,
           actor_id: int | None = None) -> ActivityImport:
    """Record a new import of a stored file (commits)."""
    item = ActivityImport(filename=(filename or "activities.csv")[:255], status="analyzing",
                          stored_path=str(stored_path), actor_id=actor_id,
                          actor_label=actor_label, report={}, progress=0, rows=0)
    db.session.add(item)
    db.session.commit()
    return item


def start_check(item: ActivityImport) -> str:
    """Run the dry run now for small files, in the background for large ones."""
    sweep()
    size = Path(item.stored_path).stat().st_size if item.stored_path else 0
    if size <= SYNC_BYTES:
        run_check(item.id)
        return "now"
    from webapp.jobs import enqueue

    return enqueue("webapp.services.activity_imports.run_check", item.id)


def run_check(import_id: int) -> None:
    """Job: the dry run of an import, stored as its report (nothing is recorded)."""
    with runner(import_id, RUNNER_KIND):
        _run(import_id, apply=False)


def request_apply(item: ActivityImport) -> str:
    """Confirm a dry run: mark the import applying and start the job (commits)."""
    if item.status not in ("ready", "interrupted") or not item.report.get("counts"):
        raise ImportRefused(_not_ready(item))
    item.status = "applying"
    item.progress = 0
    item.error = None
    item.report = {**item.report, "started_at": utcnow().isoformat()}
    db.session.commit()
    from webapp.jobs import enqueue

    return enqueue("webapp.services.activity_imports.run_apply", item.id)


def run_apply(import_id: int, progress_callback: Callable[[int], None] | None = None) -> bool:
    """Job: record an import's valid lines in one transaction; returns whether it did."""
    with runner(import_id, RUNNER_KIND):
        return _run(import_id, apply=True, callback=progress_callback)


def _run(import_id: int, *, apply: bool,
         callback: Callable[[int], None] | None = None) -> bool:
    """Check or apply an import and store the outcome; one commit, nothing half-done."""
    item = db.session.get(ActivityImport, import_id)
    if item is None or not item.stored_path:
        return False
    progress = ImportProgress(item.id, callback)
    problems_file = Path(item.stored_path + PROBLEMS_SUFFIX)
    try:
        report = process(Path(item.stored_path), apply=apply, actor=item.actor_label,
                         progress=progress, problems_file=problems_file)
        if not apply:
            db.session.rollback()
            item = db.session.get(ActivityImport, import_id)
        _store(item, "applied" if apply else "ready", report=report)
        db.session.commit()
    except FileRejected as exc:
        db.session.rollback()
        _finish(import_id, "failed" if apply else "rejected",
                f"{exc} Nothing was recorded." if apply else str(exc))
        return False
    except Exception:
        db.session.rollback()
        current_app.logger.exception("activity import %s failed", import_id)
        _finish(import_id, "failed", "The import failed because of an unexpected error. "
                "Nothing was recorded.")
        return False
    finally:
        progress.finish()
    if apply:
        Path(item.stored_path).unlink(missing_ok=True)
    return True


def _store(item: ActivityImport, status: str, *, report: dict | None = None,
           error: str | None = None) -> None:
    item.status = status
    item.error = error
    item.progress = 1000
    if report is not None:
        item.report = report
        item.rows = report["rows"]
    if status not in ("ready",):
        item.finished_at = utcnow()


def _finish(import_id: int, status: str, error: str) -> None:
    """Store a failed or refused outcome and commit."""
    item = db.session.get(ActivityImport, import_id)
    if item is not None:
        _store(item, status, error=error)
        db.session.commit()


def _not_ready(item: ActivityImport) -> str:
    return {
        "analyzing": "The file is still being checked; apply it when the report is ready.",
        "applying": "This import is already being applied.",
        "applied": "This import has already been applied.",
        "rejected": "This file was refused; import a corrected file.",
        "failed": "This import failed; import the file again.",
        "discarded": "This import was discarded; import the file again.",
        "interrupted": "This dry run was interrupted; import the file again.",
    }.get(item.status, f"This import cannot be applied ({item.status}).")


def discard(item: ActivityImport) -> None:
    """Drop a checked import that will not be applied, with its files (commits)."""
    if item.status not in ("ready", "rejected", "failed", "interrupted"):
        raise ImportRefused(_not_ready(item))
    _remove_files(item)
    item.status = "discarded"
    item.finished_at = utcnow()
    db.session.commit()


def _remove_files(item: ActivityImport) -> None:
    for path in (item.stored_path, (item.report or {}).get("problems_file")):
        if path:
            Path(path).unlink(missing_ok=True)
    item.stored_path = None


def sweep(now: datetime | None = None) -> int:
    """Discard dry runs not applied within UPLOAD_KEEP_HOURS and delete their files;
    returns how many (commits)."""
    hours = float(current_app.config.get("UPLOAD_KEEP_HOURS") or KEEP_HOURS)
    now = now or utcnow()
    old = list(db.session.scalars(sa.select(ActivityImport).where(
        ActivityImport.status.in_(("ready", "rejected", "failed")),
        ActivityImport.stored_path.is_not(None),
        ActivityImport.created_at < now - timedelta(hours=hours))))
    for item in old:
        _remove_files(item)
        if item.status == "ready":
            item.status = "discarded"
            item.error = (f"Discarded automatically: it was not applied within {hours:g} "
                          "hours. Import the file again to apply it.")
            item.finished_at = now
    db.session.commit()
    return len(old)


def reap_stale() -> int:
    """Mark imports whose job died as interrupted (nothing of them was recorded); commits."""
    cutoff = utcnow() - timedelta(hours=JOB_HOURS)
    marked = 0
    for item in db.session.scalars(sa.select(ActivityImport).where(
            ActivityImport.status.in_(RUNNING))):
        if item.id in ImportProgress.live:
            continue
        gone = runner_gone(item.id, RUNNER_KIND)
        if gone or (gone is None and item.created_at < cutoff):
            what = "import" if item.status == "applying" else "dry run"
            again = ("Apply it again." if item.status == "applying"
                     else "Import the file again.")
            item.status = "interrupted"
            item.progress = 0
            item.finished_at = utcnow()
            item.error = (f"The {what} was interrupted: the process running it stopped before "
                          f"it finished, so nothing was recorded. {again}")
            marked += 1
    if marked:
        db.session.commit()
    return marked


def history(page: int = 1, per_page: int = 20):
    """The imports, newest first, paginated."""
    return db.paginate(sa.select(ActivityImport).order_by(ActivityImport.id.desc()),
                       page=page, per_page=per_page, error_out=False)
