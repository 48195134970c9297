"""The activities blueprint: CSV imports of member activities (dry run, report, apply)."""

from flask import Blueprint

bp = Blueprint("activities", __name__, url_prefix="/activities")

from webapp.activities import cli, views  # noqa: E402,F401
