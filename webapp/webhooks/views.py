"""Webhook subscriptions in the dashboard (admin): list, create, edit, delete, delivery log."""

from __future__ import annotations

import json

from flask import abort, flash, make_response, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from webapp.access import access
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.models import MembershipEvent, Segment, Webhook, WebhookDelivery
from webapp.services.webhook_delivery import (
    SIGNATURE_HEADER,
    TEST_EVENT_ID,
    overdue_since,
    queue_test_event,
    retry_delivery,
    settings,
    start,
)
from webapp.services.webhooks import (
    WebhookError,
    create_webhook,
    delete_webhook,
    delivery_stats,
    rotate_secret,
    update_webhook,
)
from webapp.webhooks import bp
from webapp.webhooks.forms import EmptyForm, WebhookForm

LOG_PAGE_SIZE = 25
LOG_STATUSES = ("pending", "retrying", "delivered", "failed")


def _webhook_or_404(webhook_id: int) -> Webhook:
    return db.session.get(Webhook, webhook_id) or abort(404)


def _segment_names(webhooks: list[Webhook]) -> dict[int, str]:
    ids = {sid for w in webhooks for sid in (w.event_filter or {}).get("segments") or []}
    if not ids:
        return {}
    rows = db.session.execute(select(Segment.id, Segment.name).where(Segment.id.in_(ids)))
    return {sid: name for sid, name in rows}


def _with_message(response, message: str):
    response.headers["HX-Trigger"] = json.dumps({"showMessage": message})
    return response


def _index_page(form: WebhookForm, new_secret: str | None = None,
                new_webhook: Webhook | None = None, block: str | None = None):
    webhooks = list(db.session.scalars(select(Webhook).order_by(Webhook.id)))
    return render("webhooks/index.html", block, webhooks=webhooks, form=form,
                  stats=delivery_stats([w.id for w in webhooks]),
                  segment_names=_segment_names(webhooks), new_secret=new_secret,
                  new_webhook=new_webhook, signature_header=SIGNATURE_HEADER,
                  delivery=settings(), overdue=overdue_since())


@bp.route("/", methods=["GET", "POST"])
@access("admin")
def index():
    """List webhook subscriptions and create one (its secret is shown once)."""
    form = WebhookForm()
    if request.method == "GET":
        return _index_page(form)
    if form.validate_on_submit():
        try:
            webhook, secret = create_webhook(form.service_data(with_active=False),
                                             actor=current_user.label)
        except WebhookError as exc:
            form.add_service_errors(exc.errors)
        else:
            page = _index_page(WebhookForm(formdata=None), secret, webhook, "webhooks_main")
            response = make_response(page, 201)
            if is_htmx():
                response.headers["HX-Retarget"] = "#webhooks-main"
                response.headers["HX-Reswap"] = "outerHTML"
                _with_message(response, "Webhook created. Copy its secret now.")
            return response
    return _index_page(form, block="create_form"), 422


def _log_query(webhook: Webhook, status: str):
    query = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
             .order_by(WebhookDelivery.id.desc()))
    if status in LOG_STATUSES:
        query = query.where(WebhookDelivery.status == status)
    return query


def _events_of(deliveries: list[WebhookDelivery]) -> dict[int, MembershipEvent]:
    ids = {d.event_id for d in deliveries if d.event_id != TEST_EVENT_ID}
    if not ids:
        return {}
    return {e.id: e for e in db.session.scalars(
        select(MembershipEvent).where(MembershipEvent.id.in_(ids)))}


def _show_page(webhook: Webhook, form: WebhookForm, block: str | None = None,
               new_secret: str | None = None):
    status = request.args.get("status", "")
    status = status if status in LOG_STATUSES else ""
    page = db.paginate(_log_query(webhook, status), per_page=LOG_PAGE_SIZE, error_out=False,
                       max_per_page=LOG_PAGE_SIZE)
    return render("webhooks/show.html", block, webhook=webhook, form=form, page=page,
                  events=_events_of(page.items), status=status, statuses=LOG_STATUSES,
                  stats=delivery_stats([webhook.id])[webhook.id],
                  segment_names=_segment_names([webhook]), button_form=EmptyForm(),
                  new_secret=new_secret, test_event_id=TEST_EVENT_ID, delivery=settings(),
                  signature_header=SIGNATURE_HEADER)


@bp.route("/<int:webhook_id>", methods=["GET"])
@access("admin")
def show(webhook_id: int):
    """One webhook: its settings and its paginated delivery log."""
    webhook = _webhook_or_404(webhook_id)
    form = WebhookForm(formdata=None)
    form.load(webhook)
    return _show_page(webhook, form, "delivery_log")


@bp.route("/<int:webhook_id>", methods=["POST"])
@access("admin")
def update(webhook_id: int):
    """Save a webhook's URL, description, filter and active flag."""
    webhook = _webhook_or_404(webhook_id)
    form = WebhookForm()
    if form.validate_on_submit():
        try:
            update_webhook(webhook, form.service_data(), actor=current_user.label)
        except WebhookError as exc:
            db.session.rollback()
            form.add_service_errors(exc.errors)
        else:
            if is_htmx():
                fresh = WebhookForm(formdata=None)
                fresh.load(webhook)
                return _with_message(make_response(_show_page(webhook, fresh, "settings")),
                                     "Webhook saved.")
            flash("Webhook saved.", "success")
            return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)
    return _show_page(webhook, form, "settings"), 422


@bp.route("/<int:webhook_id>/active", methods=["POST"])
@access("admin")
def toggle(webhook_id: int):
    """Deactivate a webhook (it gets no events) or activate it again."""
    webhook = _webhook_or_404(webhook_id)
    if EmptyForm().validate_on_submit():
        update_webhook(webhook, {"active": not webhook.active}, actor=current_user.label)
        flash("Webhook activated: it receives the events from now on." if webhook.active
              else "Webhook deactivated: it receives no events.", "success")
    return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)


@bp.route("/<int:webhook_id>/rotate", methods=["POST"])
@access("admin")
def rotate(webhook_id: int):
    """Replace the signing secret and show the new one once."""
    webhook = _webhook_or_404(webhook_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)
    secret = rotate_secret(webhook, actor=current_user.label)
    form = WebhookForm(formdata=None)
    form.load(webhook)
    return _show_page(webhook, form, new_secret=secret)


@bp.route("/<int:webhook_id>/delete", methods=["POST"])
@access("admin")
def delete(webhook_id: int):
    """Delete a webhook and its delivery log."""
    webhook = _webhook_or_404(webhook_id)
    if EmptyForm().validate_on_submit():
        url = webhook.url
        delete_webhook(webhook, actor=current_user.label)
        flash(f"Deleted the webhook to {url}.", "success")
        return redirect(url_for("webhooks.index"), code=303)
    return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)


def _after_log_action(webhook: Webhook, message: str):
    """htmx: the refreshed delivery log and a toast; otherwise back to the page."""
    if is_htmx():
        form = WebhookForm(formdata=None)
        form.load(webhook)
        return _with_message(make_response(_show_page(webhook, form, "delivery_log")), message)
    flash(message, "success")
    return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)


@bp.route("/<int:webhook_id>/test", methods=["POST"])
@access("admin")
def send_test(webhook_id: int):
    """Queue a signed test event for the worker to send at once."""
    webhook = _webhook_or_404(webhook_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)
    if not webhook.active:
        return _after_log_action(webhook, "This webhook is inactive: activate it to send "
                                          "a test event.")
    queue_test_event(webhook, actor=current_user.label)
    start(webhook.id)
    return _after_log_action(webhook, "Test event queued; it appears in the delivery log.")


@bp.route("/<int:webhook_id>/deliveries/<int:delivery_id>/retry", methods=["POST"])
@access("admin")
def retry(webhook_id: int, delivery_id: int):
    """Send a waiting or failed delivery now (with the queue behind it)."""
    webhook = _webhook_or_404(webhook_id)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        abort(404)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("webhooks.show", webhook_id=webhook.id), code=303)
    if delivery.status == "delivered":
        return _after_log_action(webhook, "That delivery has already been delivered.")
    retry_delivery(delivery, actor=current_user.label)
    if webhook.active:
        start(webhook.id)
        return _after_log_action(webhook, "Retry queued.")
    return _after_log_action(webhook, "Retry queued; it is sent once the webhook is active.")
