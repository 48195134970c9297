"""Views of the activities blueprint: import a CSV of activities, read its dry run, apply it,
follow its progress, download its problems."""

from __future__ import annotations

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

from webapp.access import access, can
from webapp.activities import bp
from webapp.activities.forms import EmptyForm, ImportForm
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import ActivityImport
from webapp.services import activity_imports as service
from webapp.services.uploads import max_bytes
from webapp.uploads.views import _safe_rows


def _import(import_id: int) -> ActivityImport:
    return db.session.get(ActivityImport, import_id) or abort(404)


def _index_context(form: ImportForm | None = None, **extra) -> dict:
    service.reap_stale()
    return {"form": form or ImportForm(formdata=None), "action_form": EmptyForm(),
            "page": service.history(page=request.args.get("page", 1, type=int)),
            "live_progress": service.live_progress, **extra}


def _redirect(target: str):
    """A redirect after a POST: HX-Redirect for htmx, 303 otherwise."""
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


@bp.route("/imports", methods=["GET", "POST"])
@access("read")
def imports():
    """The import page: the form (marketer, admin) and the history of imports."""
    if request.method == "GET":
        return render("activities/imports.html", **_index_context())
    if not can("write"):
        abort(403)
    try:
        form = ImportForm()
        submitted = form.validate_on_submit()
    except RequestEntityTooLarge:
        form = ImportForm(formdata=None)
        form.file.errors = [f"The file is larger than the {service.size_text(max_bytes())} "
                            "limit."]
        submitted = False
    if submitted:
        item = _receive(form)
        if item is not None:
            return _redirect(url_for("activities.show", import_id=item.id))
    return render("activities/imports.html", "import_form", **_index_context(form)), 422


def _receive(form: ImportForm) -> ActivityImport | None:
    """Store the file and run (or start) its dry run; a refused file's reason goes onto the
    form."""
    storage = form.file.data
    path = service.new_file_path()
    storage.save(path)
    item = service.create(stored_path=path, filename=storage.filename or "activities.csv",
                          actor_label=current_user.label, actor_id=current_user.id)
    service.start_check(item)
    db.session.expire_all()
    item = db.session.get(ActivityImport, item.id)
    if item.status == "rejected":
        form.file.errors = [item.error or "The file could not be read."]
        Path(path).unlink(missing_ok=True)
        db.session.delete(item)
        db.session.commit()
        return None
    return item


@bp.route("/imports/<int:import_id>")
@access("read")
def show(import_id: int):
    """One import: its progress while it runs, then its dry-run report or its outcome."""
    item = _import(import_id)
    return render("activities/import.html", "import_status", **_show_context(item))


def _show_context(item: ActivityImport, **extra) -> dict:
    if service.reap_stale():
        db.session.refresh(item)
    return {"item": item, "report": item.report or {}, "action_form": EmptyForm(),
            "progress": service.live_progress(item), "phase": service.phase_label,
            "has_problems": service.problems_path(item) is not None, **extra}


@bp.route("/imports/<int:import_id>/apply", methods=["POST"])
@access("write")
def apply(import_id: int):
    """Confirm a dry run: record the file's valid lines (in the background, one transaction)."""
    item = _import(import_id)
    error = None
    if not EmptyForm().validate_on_submit():
        error = "The form expired; reload the page and confirm again."
    else:
        try:
            service.request_apply(item)
        except service.ImportRefused as exc:
            error = str(exc)
    db.session.expire_all()
    item = _import(import_id)
    if error is None and not is_htmx():
        return redirect(url_for("activities.show", import_id=item.id), code=303)
    response = render("activities/import.html", "import_status",
                      **_show_context(item, apply_error=error))
    if error is not None:
        return response, 422
    response = make_response(response)
    response.headers["HX-Trigger"] = json.dumps({"showMessage": "Import applied."
                                                 if item.status == "applied"
                                                 else "Applying the import…"})
    return response


@bp.route("/imports/<int:import_id>/discard", methods=["POST"])
@access("write")
def discard(import_id: int):
    """Drop a checked import without recording anything."""
    item = _import(import_id)
    if not EmptyForm().validate_on_submit():
        flash("The form expired; reload the page and try again.", "error")
    else:
        try:
            service.discard(item)
            flash(f"Discarded {item.filename}; nothing was recorded.", "success")
        except service.ImportRefused as exc:
            flash(str(exc), "error")
    return redirect(url_for("activities.imports"), code=303)


@bp.route("/imports/<int:import_id>/problems.csv")
@access("read")
def problems(import_id: int):
    """Every problem line of an import as CSV (line, external_id, problem, column, detail)."""
    item = _import(import_id)
    path = service.problems_path(item)
    if path is None:
        abort(404, description="This import has no problem lines.")
    return Response(stream_with_context(_safe_rows(path)), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="activity-import-{item.id}-problems.csv"'})
