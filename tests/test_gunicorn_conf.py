"""The gunicorn settings file tunes the garbage collector in each worker after the fork."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


def test_post_fork_freezes_start_up_objects_and_raises_the_young_threshold():
    settings = runpy.run_path(str(CONF))
    before = gc.get_threshold()
    try:
        settings["post_fork"](None, None)
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
