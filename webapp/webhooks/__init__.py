"""The webhooks blueprint: subscriptions, delivery log, and the `flask events deliver` worker."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from webapp.webhooks import cli, delivery, views  # noqa: E402,F401

delivery.install_commit_hook()
