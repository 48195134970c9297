"""Reading list files: every shape a file comes in, and every way it can be malformed."""

from __future__ import annotations

import pytest

from tests.uploads.helpers import write
from webapp.services.upload_parser import (
    FileRejected,
    ParseStats,
    choose_column,
    inspect,
    read_identifiers,
)

MAX = 10 * 1024 * 1024


def read(tmp_path, content: str | bytes, *, header: bool | None = None,
         column: str | None = None):
    """(identifiers with lines, stats, shape) of a file."""
    path = write(tmp_path, content)
    shape = inspect(path, max_bytes=MAX, header=header)
    index, _ = choose_column(shape, column)
    stats = ParseStats()
    rows = [row for batch in read_identifiers(path, shape, index, stats, batch_size=2)
            for row in batch]
    return rows, stats, shape


@pytest.mark.parametrize("content", [
    "a@x.com\nb@x.com\n",
    "a@x.com\r\nb@x.com\r\n",
    "\ufeffa@x.com\nb@x.com",
    "\n  a@x.com  \n\n\tb@x.com\n\n",
    '"a@x.com"\n"b@x.com"\n',
    "email\na@x.com\nb@x.com\n",
    "\ufeffEmail\r\n a@x.com\r\n\r\nb@x.com\r\n",
])
def test_plain_lists_in_every_encoding_and_layout(tmp_path, content):
    rows, stats, _ = read(tmp_path, content)
    assert [ident for _, ident in rows] == ["a@x.com", "b@x.com"]
    assert stats.invalid == []


def test_line_numbers_count_blank_lines_and_the_header(tmp_path):
    rows, stats, shape = read(tmp_path, "email\n\na@x.com\n  \nb@x.com\n")
    assert shape.has_header and rows == [(3, "a@x.com"), (5, "b@x.com")]
    assert stats.rows == 2 and stats.blank_lines == 2


@pytest.mark.parametrize(("content", "delimiter"), [
    ("id;email\n1;a@x.com\n2;b@x.com\n", ";"),
    ("id\temail\n1\ta@x.com\n2\tb@x.com\n", "\t"),
    ('id,email\n1,"a@x.com"\n2, b@x.com \n', ","),
    ("id|email\n1|a@x.com\n2|b@x.com\n", "|"),
])
def test_delimiters_and_header_column(tmp_path, content, delimiter):
    rows, _, shape = read(tmp_path, content, column="email")
    assert shape.delimiter == delimiter
    assert [ident for _, ident in rows] == ["a@x.com", "b@x.com"]


def test_header_names_pick_the_column(tmp_path):
    path = write(tmp_path, "Name,E-mail Address,Customer ID\nAda,a@x.com,C1\n")
    shape = inspect(path, max_bytes=MAX)
    assert shape.has_header and choose_column(shape, None) == (2, "header")


def test_without_header_first_row_is_data(tmp_path):
    rows, _, shape = read(tmp_path, "C1,Ada\nC2,Grace\n")
    assert not shape.has_header and [r[1] for r in rows] == ["C1", "C2"]


def test_forced_header_and_forced_no_header(tmp_path):
    rows, _, _ = read(tmp_path, "customers\nC1\n", header=True)
    assert rows == [(2, "C1")]
    rows, _, _ = read(tmp_path, "email\nC1\n", header=False)
    assert [r[1] for r in rows] == ["email", "C1"]


def test_quoted_fields_with_delimiters_inside(tmp_path):
    rows, stats, _ = read(tmp_path, 'email,note\n"a@x.com","x, y"\nb@x.com,"say ""hi"""\n')
    assert [r[1] for r in rows] == ["a@x.com", "b@x.com"] and stats.invalid == []


def test_invalid_rows_have_lines_and_reasons(tmp_path):
    content = ("email,name\n"
               "a@x.com,ok\n"
               ",no id\n"
               "onlyone\n"
               f"{'y' * 321},long\n"
               "bad\x01id,control\n"
               '"open quote,never closed\n'
               "c@x.com,after\n")
    rows, stats, _ = read(tmp_path, content, column="2")
    reasons = {p.line: p.detail for p in stats.invalid}
    assert rows[0] == (2, "ok")
    assert reasons[4] == "row has 1 field; the identifier column (name) is missing"
    rows, stats, _ = read(tmp_path, content)
    reasons = {p.line: p.detail for p in stats.invalid}
    assert rows == [(2, "a@x.com"), (4, "onlyone")]
    assert reasons[3] == "no identifier in email"
    assert reasons[5] == "identifier is 321 characters long; at most 320"
    assert reasons[6] == "identifier contains a control character"
    assert reasons[7] == "a quoted field opened on this line is never closed"
    assert stats.rows == 6


def test_long_identifier_in_a_plain_list(tmp_path):
    rows, stats, _ = read(tmp_path, f"a@x.com\n{'z' * 400}\nb@x.com\n")
    assert [r[0] for r in rows] == [1, 3]
    assert [(p.line, p.problem) for p in stats.invalid] == [(2, "invalid")]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "The file is empty."),
    (b"\r\n\r\n   \n", "only blank lines"),
    (b"external_id\r\n", "only a header row"),
    (b"PK\x03\x04rest", "Excel workbook"),
    (b"%PDF-1.7", "PDF"),
    (b"\xff\xfea\x00b\x00", "UTF-16"),
    (b"a@x.com\n\x00\x00\x00", "not text"),
    (b"ok@x.com\nr\xe9sum\xe9@x.com\n", "Line 2, column 2: byte 0xE9 is not valid UTF-8"),
    (b'{"members": ["a"]}', "looks like JSON"),
    (b"<?xml version='1.0'?><list/>", "looks like HTML or XML"),
])
def test_unreadable_files_are_refused_with_a_clear_message(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(FileRejected, match=message):
        shape = inspect(path, max_bytes=MAX)
        list(read_identifiers(path, shape, 0, ParseStats()))


def test_too_large(tmp_path):
    path = write(tmp_path, "a@x.com\n" * 1000)
    with pytest.raises(FileRejected, match="the limit is"):
        inspect(path, max_bytes=1024)


def test_bad_byte_after_the_sniffed_part_is_found_with_its_line(tmp_path):
    content = b"".join(f"m{i}@x.com\n".encode() for i in range(20_000)) + b"caf\xe9\n"
    path = write(tmp_path, content)
    shape = inspect(path, max_bytes=MAX)
    with pytest.raises(FileRejected, match="Line 20001, column 4"):
        list(read_identifiers(path, shape, 0, ParseStats()))


def test_unknown_column_choice(tmp_path):
    path = write(tmp_path, "id,email\n1,a@x.com\n")
    shape = inspect(path, max_bytes=MAX)
    with pytest.raises(FileRejected, match="There is no column named 'phone'"):
        choose_column(shape, "phone")


BIG = "z" * 140_000  # over Python csv's 128 KiB field limit
MANY = "".join(f"m{i}@x.com,n\n" for i in range(20_000))  # pushes a row past the sniffed part


@pytest.mark.parametrize(("content", "message"), [
    # a plain list (the sniffer's delimiters all overflow) and a long note column
    (f"a@x.com\n{BIG}\nb@x.com\n", "Line 2, column 1: the field that starts there \\(column 1\\)"),
    (f"email,note\na@x.com,hi\nb@x.com,{BIG}\n",
     "Line 3, column 9: the field that starts there \\(note\\) is longer than 131,072 "
     "characters \\(128 KiB\\), the most a CSV field may hold"),
    # a quote never closed swallows the rest of the file into one field
    ('email,note\na@x.com,"oops\n' + "c@x.com,z\n" * 20_000,
     "Line 2, column 9: .*\\(note\\).* opens with a quote that is probably never closed"),
    # the same after the part inspect reads, found while streaming the rows
    (f"email,note\n{MANY}b@x.com,{BIG}\nc@x.com,z\n", "Line 20002, column 9: .*\\(note\\)"),
    (f"email;note\r\n{MANY.replace(',', ';')}b@x.com;\"x\"\"y\r\n" + "q\r\n" * 50_000,
     "Line 20002, column 9: .*\\(note\\).* never closed"),
    ("a@x.com\n" * 20_000 + f"  {BIG}\n", "Line 20001, column 3: .*\\(column 1\\)"),
], ids=["plain", "note", "unclosed", "note-late", "unclosed-late-crlf", "plain-late"])
def test_a_field_over_the_csv_limit_is_refused_with_its_line_and_column(
        tmp_path, content, message):
    """Python's csv refuses a field over 128 KiB: the file gets a message, not a traceback."""
    path = write(tmp_path, content)
    with pytest.raises(FileRejected, match=message):
        shape = inspect(path, max_bytes=MAX)
        index, _ = choose_column(shape, None)
        list(read_identifiers(path, shape, index, ParseStats()))
