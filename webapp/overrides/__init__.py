"""The overrides blueprint."""

from flask import Blueprint

bp = Blueprint("overrides", __name__, url_prefix="/overrides")

from webapp.overrides import views  # noqa: E402,F401
