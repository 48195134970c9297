"""The uploads blueprint."""

from flask import Blueprint

bp = Blueprint("uploads", __name__, url_prefix="/segments")

from webapp.uploads import cli, views  # noqa: E402,F401
