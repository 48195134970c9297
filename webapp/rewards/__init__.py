"""The rewards blueprint."""

from flask import Blueprint

bp = Blueprint("rewards", __name__, url_prefix="/rewards")

from webapp.rewards import views  # noqa: E402,F401
