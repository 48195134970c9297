"""The offers blueprint."""

from flask import Blueprint

bp = Blueprint("offers", __name__, url_prefix="/offers")

from webapp.offers import views  # noqa: E402,F401
