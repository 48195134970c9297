"""The webhooks blueprint: subscriptions, delivery log, and the `flask events deliver` worker."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from webapp.services import webhook_delivery as delivery  # noqa: E402
from webapp.webhooks import cli, views  # noqa: E402,F401

delivery.install_commit_hook()
