"""Views of the uploads blueprint: upload a list, read its dry run, apply, follow, undo."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import (
    Response,
    abort,
    flash,
    make_response,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from webapp.access import access, can
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import Segment, Upload
from webapp.services import uploads as service
from webapp.services.upload_parser import spreadsheet_safe
from webapp.uploads import bp
from webapp.uploads.forms import EmptyForm, UploadForm


def _segment(segment_id: int) -> Segment:
    return db.session.get(Segment, segment_id) or abort(404)


def _upload(segment: Segment, upload_id: int) -> Upload:
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.segment_id != segment.id:
        abort(404)
    return upload


def _index_context(segment: Segment, form: UploadForm | None = None, **extra) -> dict:
    service.reap_stale(segment.id)
    page = service.history(segment.id, page=request.args.get("page", 1, type=int))
    latest = service.latest_undoable(segment.id)
    return {"segment": segment, "form": form or UploadForm(formdata=None), "page": page,
            "latest_id": latest.id if latest else None, "action_form": EmptyForm(),
            "modes": service.MODE_LABELS, "live_progress": service.live_progress, **extra}


def _message(response, text: str):
    response.headers["HX-Trigger"] = json.dumps({"showMessage": text})
    return response


@bp.route("/<int:segment_id>/uploads", methods=["GET", "POST"])
@access("read")
def index(segment_id: int):
    """The upload page: the form (marketer, admin) and the segment's upload history."""
    segment = _segment(segment_id)
    if request.method == "GET":
        return render("uploads/index.html", **_index_context(segment))
    if not can("write"):
        abort(403)
    try:
        form = UploadForm()
        submitted = form.validate_on_submit()
    except RequestEntityTooLarge:
        form = UploadForm(formdata=None)
        form.file.errors = [f"The file is larger than the "
                            f"{service.max_bytes() / 1_048_576:,.0f} MB limit."]
        submitted = False
    if segment.kind != "static":
        form.file.errors = [f"{segment.name} is a dynamic segment: its members come from its "
                            "rules. Only static segments take uploaded lists."]
        submitted = False
    if submitted:
        upload = _receive(segment, form)
        if upload is not None:
            target = url_for("uploads.show", segment_id=segment.id, upload_id=upload.id)
            if is_htmx():
                response = make_response("", 204)
                response.headers["HX-Redirect"] = target
                return response
            return redirect(target, code=303)
    return render("uploads/index.html", "upload_form", **_index_context(segment, form)), 422


def _receive(segment: Segment, form: UploadForm) -> Upload | None:
    """Store the file and run (or start) its dry run; errors go onto the form's file field."""
    storage = form.file.data
    path = service.new_file_path(segment.id)
    storage.save(path)
    if path.stat().st_size > service.max_bytes():
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        form.file.errors = [f"The file is {size / 1_048_576:,.1f} MB; the limit is "
                            f"{service.max_bytes() / 1_048_576:,.0f} MB."]
        return None
    filename = secure_filename(storage.filename or "") or "upload.csv"
    try:
        upload = service.create_upload(
            segment, stored_path=path, filename=storage.filename or filename,
            mode=form.mode.data, actor_label=current_user.label, actor_id=current_user.id,
            column=form.column.data or None, header=form.header_option())
    except service.UploadError as exc:
        path.unlink(missing_ok=True)
        form.file.errors = [str(exc)]
        return None
    service.start_dry_run(upload)
    db.session.expire_all()
    upload = db.session.get(Upload, upload.id)
    if upload.status == "rejected":
        form.file.errors = [upload.error or "The file could not be read."]
        Path(path).unlink(missing_ok=True)
        db.session.delete(upload)
        db.session.commit()
        return None
    return upload


@bp.route("/<int:segment_id>/uploads/history")
@access("read")
def history(segment_id: int):
    """The segment's upload history alone (embedded lazily by the segment page)."""
    segment = _segment(segment_id)
    return render("uploads/index.html", "upload_history", **_index_context(segment))


@bp.route("/<int:segment_id>/uploads/<int:upload_id>")
@access("read")
def show(segment_id: int, upload_id: int):
    """One upload: its progress while it runs, then its dry-run report or outcome."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    return render("uploads/show.html", "upload_status", **_show_context(segment, upload))


def _show_context(segment: Segment, upload: Upload, **extra) -> dict:
    if service.reap_stale(segment.id):
        db.session.refresh(upload)
    return {"segment": segment, "upload": upload, "report": upload.report or {},
            "progress": service.live_progress(upload), "phase": service.phase_label,
            "modes": service.MODE_LABELS, "action_form": EmptyForm(),
            "has_problems": service.problems_path(upload) is not None,
            "stale": service.is_stale(upload),
            "undoable": (service.latest_undoable(segment.id) or upload).id == upload.id
            and upload.status == "applied" and upload.mode in service.MODES
            and upload.undone_at is None, **extra}


@bp.route("/<int:segment_id>/uploads/<int:upload_id>/apply", methods=["POST"])
@access("write")
def apply(segment_id: int, upload_id: int):
    """Confirm a dry run: apply the upload to the list (in the background for large files)."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    return _act(segment, upload, service.request_apply,
                expired="The form expired; reload the page and confirm again.",
                done=lambda u: "Upload applied." if u.status == "applied"
                else "Applying the upload…")


@bp.route("/<int:segment_id>/uploads/<int:upload_id>/recheck", methods=["POST"])
@access("write")
def recheck(segment_id: int, upload_id: int):
    """Compute a dry run again against the list as it is now (after the list changed)."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    return _act(segment, upload, service.rerun_dry_run,
                expired="The form expired; reload the page and try again.",
                done=lambda u: "The dry run was computed again.")


def _act(segment, upload, action, *, expired: str, done):
    """Run an upload action; redirect (or the refreshed status block and a toast), 422 on error."""
    error = None
    if not EmptyForm().validate_on_submit():
        error = expired
    else:
        try:
            action(upload)
        except service.UploadError as exc:
            error = str(exc)
    db.session.expire_all()
    upload = db.session.get(Upload, upload.id)
    if error is None and not is_htmx():
        return redirect(url_for("uploads.show", segment_id=segment.id, upload_id=upload.id),
                        code=303)
    response = render("uploads/show.html", "upload_status",
                      **_show_context(segment, upload, apply_error=error))
    if error is not None:
        return response, 422
    return _message(make_response(response), done(upload))


@bp.route("/<int:segment_id>/uploads/<int:upload_id>/discard", methods=["POST"])
@access("write")
def discard(segment_id: int, upload_id: int):
    """Drop a checked upload without applying it."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    if EmptyForm().validate_on_submit():
        try:
            service.discard(upload)
            flash(f"Discarded {upload.filename}; the list was not changed.", "success")
        except service.UploadError as exc:
            flash(str(exc), "error")
    return redirect(url_for("uploads.index", segment_id=segment.id), code=303)


@bp.route("/<int:segment_id>/uploads/<int:upload_id>/problems.csv")
@access("read")
def problems(segment_id: int, upload_id: int):
    """Download every problem row of an upload as CSV (line, identifier, problem, detail)."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    path = service.problems_path(upload)
    if path is None:
        abort(404, description="This upload has no problem rows.")
    return Response(stream_with_context(_safe_rows(path)), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="upload-{upload.id}-problems.csv"'})


def _safe_rows(path: Path):
    """The problems file's rows with formula-like cells neutralised (files written before
    the writer did it are made safe too; already-safe cells pass unchanged)."""
    with path.open(newline="", encoding="utf-8") as handle:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for number, row in enumerate(csv.reader(handle)):
            writer.writerow(row if number == 0 else [spreadsheet_safe(cell) for cell in row])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()


@bp.route("/<int:segment_id>/uploads/<int:upload_id>/undo", methods=["POST"])
@access("write")
def undo(segment_id: int, upload_id: int):
    """Undo the segment's latest upload: the list goes back to how it was before it."""
    segment = _segment(segment_id)
    upload = _upload(segment, upload_id)
    error = None
    if not EmptyForm().validate_on_submit():
        error = "The form expired; reload the page and try again."
    else:
        try:
            done = service.request_undo(upload, actor_label=current_user.label,
                                        actor_id=current_user.id)
        except service.UploadError as exc:
            error = str(exc)
    db.session.expire_all()
    segment = _segment(segment_id)
    if error:
        if not is_htmx():
            flash(error, "error")
            return redirect(url_for("uploads.index", segment_id=segment.id), code=303)
        context = _index_context(segment, history_error=error)
        return render("uploads/index.html", "upload_history", **context), 422
    # The undo's own page follows it to the end and shows the list's size after it, which
    # a page showing the size from before the job finished would not.
    target = url_for("uploads.show", segment_id=segment.id, upload_id=done.id)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)
