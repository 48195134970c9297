"""`flask activities import`: the dry run's counts and problems, apply, refused files."""

from __future__ import annotations

from sqlalchemy import select

from tests.activities.helpers import coffee_csv, coffee_segment, iso, stored, write
from tests.factories import make_member
from webapp.extensions import db
from webapp.models import ActivityImport


def test_dry_run_prints_counts_and_problems_and_records_nothing(runner, tmp_path, app):
    make_member(external_id="ANA")
    path = write(tmp_path, coffee_csv("ANA", 2) + f"ANA,purchase,{iso()},4.567891,x1,coffee\n"
                 + f"GHOST,visit,{iso()},,x2,\n")
    problems = tmp_path / "problems.csv"
    result = runner.invoke(args=["activities", "import", str(path), "--dry-run",
                                 "--problems", str(problems)])
    assert result.exit_code == 0, result.output
    assert "Would record   2" in result.output
    assert "Invalid        2" in result.output
    assert "line 4, amount: amount has at most 4 decimal places" in result.output
    assert "line 5, member: no member has the id, external id or email 'GHOST'" in result.output
    assert "Dry run only: nothing was recorded." in result.output
    assert problems.read_text().count("\n") == 3
    assert stored() == 0
    assert db.session.scalars(select(ActivityImport)).one().status == "discarded"


def test_apply_records_and_moves_segments(runner, tmp_path, app):
    make_member(external_id="ANA")
    coffee_segment()
    path = write(tmp_path, coffee_csv("ANA", 3))
    result = runner.invoke(args=["activities", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Recorded       3" in result.output
    assert "segment 'Coffee regulars': +1 / −0 members" in result.output
    item = db.session.scalars(select(ActivityImport)).one()
    assert item.status == "applied" and item.actor_label.startswith("cli:")
    assert stored() == 3
    again = runner.invoke(args=["activities", "import", str(path)])
    assert "Duplicates     3" in again.output and stored() == 3


def test_a_refused_file_exits_non_zero(runner, tmp_path, app):
    path = write(tmp_path, b"member,amount\nA,1\n")
    result = runner.invoke(args=["activities", "import", str(path)])
    assert result.exit_code == 1
    assert "The header row has no activity_type, occurred_at, external_id columns" \
        in result.output
    assert "Nothing was recorded." in result.output
    assert db.session.scalars(select(ActivityImport)).one().status == "failed"
