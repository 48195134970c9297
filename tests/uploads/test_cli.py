"""`flask segments upload`: report, apply, dry run, exit codes."""

from __future__ import annotations

import pytest

from tests.factories import make_member, make_segment
from tests.uploads.helpers import events, list_ids, write
from webapp.extensions import db
from webapp.models import Upload


@pytest.fixture
def people(app):
    """Three members."""
    return [make_member(external_id=f"K-{i}", email=f"cli{i}@example.com") for i in range(3)]


def test_dry_run_prints_the_report_and_changes_nothing(runner, tmp_path, people):
    segment = make_segment("Cli list", kind="static")
    path = write(tmp_path, f"email\n{people[0].email}\nghost@example.com\n")
    result = runner.invoke(args=["segments", "upload", "Cli list", str(path), "--mode", "add",
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Unknown members" in result.output and "+1 added" in result.output
    assert "line 3: unknown member: ghost@example.com" in result.output
    assert "Dry run only: nothing was changed." in result.output
    assert list_ids(segment.id) == set()


def test_apply_by_customer_segment_id(runner, tmp_path, people):
    segment = make_segment("Cli list", kind="static", customer_segment_id="crm-42")
    path = write(tmp_path, "\n".join(p.external_id for p in people))
    result = runner.invoke(args=["segments", "upload", "crm-42", str(path), "--mode", "add"])
    assert result.exit_code == 0, result.output
    assert "now has 3 members" in result.output
    upload = db.session.query(Upload).one()
    assert upload.status == "applied" and upload.actor_label.startswith("cli:")
    assert list_ids(segment.id) == {p.id for p in people}
    assert {e[2] for e in events(segment.id)} == {upload.id}


@pytest.mark.parametrize(("content", "message"), [
    ("ghost@example.com\n", "nothing to apply"),
    ("", "The file is empty."),
])
def test_nothing_applied_exits_non_zero(runner, tmp_path, people, content, message):
    segment = make_segment("Cli list", kind="static")
    path = write(tmp_path, content)
    result = runner.invoke(args=["segments", "upload", str(segment.id), str(path),
                                 "--mode", "replace"])
    assert result.exit_code != 0
    assert message in result.output
    assert list_ids(segment.id) == set()


def test_dynamic_or_missing_segment_exits_non_zero(runner, tmp_path, people):
    make_segment("Rules", kind="dynamic")
    path = write(tmp_path, people[0].email)
    result = runner.invoke(args=["segments", "upload", "Rules", str(path), "--mode", "add"])
    assert result.exit_code != 0 and "dynamic segment" in result.output
    result = runner.invoke(args=["segments", "upload", "Nope", str(path), "--mode", "add"])
    assert result.exit_code != 0 and "No segment 'Nope'" in result.output


def test_a_field_over_128_kib_is_refused_with_its_line_and_column(runner, tmp_path, people):
    """The CLI prints the parser's message (no traceback) and changes nothing."""
    segment = make_segment("Cli list", kind="static")
    path = write(tmp_path, f"email,note\n{people[0].email},{'n' * 140_000}\n")
    for extra in (["--dry-run"], []):
        result = runner.invoke(args=["segments", "upload", "Cli list", str(path),
                                     "--mode", "add", *extra])
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert ("Line 2, column 18: the field that starts there (note) is longer than "
                "131,072 characters") in result.output
        assert "Nothing was changed." in result.output
    assert list_ids(segment.id) == set()
