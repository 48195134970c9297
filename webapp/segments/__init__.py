"""The segments blueprint."""

from flask import Blueprint

bp = Blueprint("segments", __name__, url_prefix="/segments")

from webapp.segments import views  # noqa: E402,F401
