"""Reading member-list files: CSV with or without a header, or one identifier per line.

Pure Python, no database: `inspect` looks at the start of a file (encoding, delimiter, header,
a sample of rows) and refuses what is not a readable text list; `read_identifiers` then streams
the chosen column in batches of (line number, identifier), collecting invalid rows with their
line number and a reason a person can act on.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SNIFF_BYTES = 64 * 1024
SAMPLE_ROWS = 200
MAX_IDENTIFIER = 320
DELIMITERS = (",", ";", "\t", "|")
BOM = b"\xef\xbb\xbf"

# Header names (normalised: lower case, spaces and dashes as underscores) per identifier kind,
# in the order SPEC §6 tries identifiers.
HEADER_NAMES = {
    "member_id": {"id", "member_id", "memberid", "member", "member_uuid", "uuid", "member_number"},
    "external_id": {"external_id", "externalid", "ext_id", "external", "customer_id",
                    "customerid", "user_id", "userid", "client_id", "loyalty_id", "account_id"},
    "email": {"email", "e_mail", "email_address", "emailaddress", "mail", "member_email"},
}
GENERIC_NAMES = {"identifier", "identifiers", "member_identifier", "key"}

MAGIC = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel or Word document (.xls/.doc)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


class FileRejected(Exception):
    """The file as a whole cannot be read as a member list; the message says why."""


@dataclass
class FileShape:
    """What the start of a file looks like."""

    size: int
    bom: bool
    delimiter: str
    has_header: bool
    header: list[str]
    columns: int
    sample: list[list[str]]
    line_endings: str

    def column_label(self, index: int) -> str:
        """How to name column `index` (0-based) to a person."""
        if self.has_header and index < len(self.header) and self.header[index].strip():
            return self.header[index].strip()
        return f"column {index + 1}"


@dataclass
class Problem:
    """One row that is not used, with why."""

    line: int
    identifier: str
    problem: str
    detail: str

    def as_dict(self) -> dict:
        """Plain JSON for the stored report."""
        return {"line": self.line, "identifier": self.identifier, "problem": self.problem,
                "detail": self.detail}


@dataclass
class ParseStats:
    """Counts gathered while streaming the rows."""

    rows: int = 0
    valid: int = 0
    blank_lines: int = 0
    invalid: list[Problem] = field(default_factory=list)


#: The longest field Python's csv module reads (128 KiB unless a process changes it); a longer
#: one is never an identifier, and usually a quote that is never closed.
FIELD_LIMIT = csv.field_size_limit()


def _is_field_limit(exc: csv.Error) -> bool:
    return "field limit" in str(exc)


def _long_field(lines: Iterable[str], line: int, delimiter: str,
                label: Callable[[int], str] | None = None) -> FileRejected:
    """The refusal for a field over FIELD_LIMIT in the record that starts on `line`.

    `lines` are the file's lines from that record on; they are scanned as csv reads them
    (quotes, doubled quotes, the delimiter) to say where the field starts and which it is.
    """
    index, start, length, quoted, in_quotes, closed = 0, (line, 1), 0, False, False, False
    at_start = True
    for text in lines:
        column = 1
        for char in text:
            if at_start:
                at_start, start, length, quoted, closed = False, (line, column), 0, False, False
                if char == '"':
                    quoted = in_quotes = True
                    column += 1
                    continue
            if in_quotes:
                if char == '"':
                    in_quotes, closed = False, True
                else:
                    length += 1
            elif char == delimiter:
                index, at_start = index + 1, True
            elif char in "\r\n":
                index, at_start = 0, True
            elif char == '"' and closed:  # a doubled quote inside a quoted field
                in_quotes, closed = True, False
                length += 1
            else:
                length += 1
            if length > FIELD_LIMIT:
                return _long_field_message(start, index, quoted, label)
            column += 1
        line += 1
    return _long_field_message(start, index, quoted, label)


def _long_field_message(start: tuple[int, int], index: int, quoted: bool,
                        label: Callable[[int], str] | None) -> FileRejected:
    name = label(index) if label else f"column {index + 1}"
    where = f"Line {start[0]}, column {start[1]}: the field that starts there ({name})"
    limit = f"is longer than {FIELD_LIMIT:,} characters ({FIELD_LIMIT // 1024} KiB)"
    if quoted:
        return FileRejected(f"{where} {limit}. It opens with a quote that is probably never "
                            "closed: close or remove that quote and upload the file again.")
    return FileRejected(f"{where} {limit}, the most a CSV field may hold. Shorten or remove "
                        "it and upload the file again.")


def normalise_header(cell: str) -> str:
    """'E-mail Address' -> 'e_mail_address'."""
    return re.sub(r"[\s\-.]+", "_", cell.strip().strip('"').lower()).strip("_")


def header_kind(cell: str) -> str | None:
    """Which identifier a header cell names (member_id, external_id, email), if any."""
    name = normalise_header(cell)
    for kind, names in HEADER_NAMES.items():
        if name in names:
            return kind
    if name in GENERIC_NAMES:
        return "any"
    return None


def _refuse_binary(head: bytes) -> None:
    for magic, what in MAGIC:
        if head.startswith(magic):
            raise FileRejected(f"This file is {what}, not a CSV or text file. Save it as CSV "
                               "(UTF-8) and upload it again.")
    if b"\x00" in head:
        raise FileRejected("This file is not text (it contains binary data). Upload a CSV "
                           "file or a text file with one identifier per line.")


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
        raise FileRejected(
            f"Line {line}, column {column}: byte 0x{raw[exc.start]:02X} is not valid UTF-8. "
            "Save the file as UTF-8 (Excel: 'CSV UTF-8') and upload it again.") from None


def _text(path: Path) -> str:
    """The whole file as text (BOM removed), refusing NUL bytes and bytes that are not UTF-8."""
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise FileRejected(f"Line {line} contains a NUL byte: this is not a text file.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        _decode(data[start:exc.end], line)
        raise


def decoded_text(path: Path) -> str:
    """The whole file as text, with the checks of the member lists (for other importers)."""
    return _text(path)


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines of the start of a file (for sniffing), refusing bytes that are not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if b"\x00" in raw:
                raise FileRejected(f"Line {number} contains a NUL byte: this is not a text file.")
            yield _decode(raw, number)


def _split_sample(lines: list[str]) -> str:
    """The delimiter used consistently by the sample lines ('' for one value per line)."""
    best, best_score = "", 0.0
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) - 1 for row in csv.reader(lines, delimiter=delimiter) if any(row)]
        except csv.Error:  # a field over the limit: split this way, the lines do not fit
            continue
        if not counts:
            continue
        with_it = [c for c in counts if c > 0]
        if len(with_it) < max(1, len(counts) * 0.8):
            continue
        most = max(set(with_it), key=with_it.count)
        score = with_it.count(most) / len(counts)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def inspect(path: Path, *, max_bytes: int, header: bool | None = None) -> FileShape:
    """Look at the start of the file; raise FileRejected when it is not a readable list."""
    size = path.stat().st_size
    if size == 0:
        raise FileRejected("The file is empty.")
    if size > max_bytes:
        raise FileRejected(f"The file is {size / 1_048_576:,.1f} MB; the limit is "
                           f"{max_bytes / 1_048_576:,.0f} MB.")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    bom = head.startswith(BOM)
    _refuse_binary(head[len(BOM):] if bom else head)
    text_lines: list[str] = []
    for line in _lines(path):
        text_lines.append(line)
        if len(text_lines) > SAMPLE_ROWS + 50 or sum(map(len, text_lines)) > SNIFF_BYTES:
            break
    stripped = "".join(text_lines).lstrip()
    if not stripped:
        raise FileRejected("The file has no identifiers: it holds only blank lines.")
    if stripped[0] in "{[" and _looks_like_json(stripped):
        raise FileRejected("This file looks like JSON, not CSV. Upload a CSV file or a text "
                           "file with one identifier per line.")
    if stripped[0] == "<":
        raise FileRejected("This file looks like HTML or XML, not CSV. Upload a CSV file or a "
                           "text file with one identifier per line.")
    line_endings = "CRLF" if any(line.endswith("\r\n") for line in text_lines) else "LF"
    delimiter = _split_sample(text_lines)
    rows = _sample_rows(text_lines, delimiter or ",", header)
    first = rows[0] if rows else []
    has_header = header if header is not None else any(header_kind(c) for c in first)
    data = rows[1:] if has_header else rows
    if has_header and not data and size <= SNIFF_BYTES:
        raise FileRejected("The file has no identifiers: it holds only a header row.")
    return FileShape(size=size, bom=bom, delimiter=delimiter, has_header=bool(has_header),
                     header=[c.strip() for c in first] if has_header else [],
                     columns=max((len(r) for r in rows), default=1),
                     sample=data[:SAMPLE_ROWS], line_endings=line_endings)


def _sample_rows(lines: list[str], delimiter: str, header: bool | None) -> list[list[str]]:
    """The non-blank rows of the sample lines; a field over the limit rejects the file."""
    reader = csv.reader(lines, delimiter=delimiter)
    rows, previous = [], 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            if not _is_field_limit(exc):
                raise
            names = rows[0] if rows and (header if header is not None
                                         else any(header_kind(c) for c in rows[0])) else []
            shape = FileShape(size=0, bom=False, delimiter=delimiter, has_header=bool(names),
                              header=names, columns=len(names), sample=[], line_endings="")
            raise _long_field(lines[previous:], previous + 1, delimiter,
                              shape.column_label) from None
        previous = reader.line_num
        if any(cell.strip() for cell in row):
            rows.append(row)


def _looks_like_json(text: str) -> bool:
    head = text[:200].lstrip("[{ \r\n\t")
    return head.startswith('"') or head.startswith("{") or head == "" or text.rstrip()[-1] in "]}"


def choose_column(shape: FileShape, choice: str | None,
                  score: Callable[[list[str]], int] | None = None) -> tuple[int, str]:
    """The 0-based identifier column and how it was chosen (choice, header or content).

    `choice` is a header name or a 1-based column number; without it a recognised header
    name wins (member id, then external id, then email), else the column whose sample
    values `score` best (how many name known members), else the first.
    """
    if choice is not None and choice.strip():
        wanted = choice.strip()
        if wanted.isdigit():
            index = int(wanted) - 1
            if 0 <= index < shape.columns:
                return index, "choice"
            raise FileRejected(f"Column {wanted} does not exist: the file has "
                               f"{shape.columns} column{'s' if shape.columns != 1 else ''}.")
        for index, cell in enumerate(shape.header):
            if normalise_header(cell) == normalise_header(wanted):
                return index, "choice"
        names = ", ".join(repr(c) for c in shape.header) or "none (no header row)"
        raise FileRejected(f"There is no column named {wanted!r}. Columns: {names}.")
    if shape.has_header:
        kinds = [header_kind(c) for c in shape.header]
        for kind in ("member_id", "external_id", "email", "any"):
            if kind in kinds:
                return kinds.index(kind), "header"
    if shape.columns == 1:
        return 0, "content"
    best, best_score = 0, -1
    for index in range(shape.columns):
        values = [row[index].strip() for row in shape.sample if len(row) > index]
        points = score(values) if score else sum(bool(v) for v in values)
        if points > best_score:
            best, best_score = index, points
    return best, "content"


CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PLAIN_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def _check(value: str) -> str | None:
    """Why an identifier cannot be used, or None."""
    if not value:
        return "no identifier"
    if len(value) > MAX_IDENTIFIER:
        return f"identifier is {len(value):,} characters long; at most {MAX_IDENTIFIER}"
    if CONTROL.search(value):
        if "\n" in value or "\r" in value:
            return "a quoted field opened on this line is never closed"
        return "identifier contains a control character"
    return None


def read_identifiers(path: Path, shape: FileShape, column: int, stats: ParseStats, *,
                     batch_size: int = 50_000,
                     progress: Callable[[int], None] | None = None,
                     ) -> Iterator[list[tuple[int, str]]]:
    """Stream the chosen column as batches of (line, identifier); invalid rows go to stats."""
    text = _text(path)
    if not shape.delimiter and '"' not in text and not PLAIN_CONTROL.search(text):
        yield from _read_plain(text, shape, stats, batch_size, progress)
        return
    lines = max(text.count("\n"), 1)
    source = io.StringIO(text, newline="")
    reader = csv.reader(source, delimiter=shape.delimiter or ",")
    del text
    label = shape.column_label(column)
    batch: list[tuple[int, str]] = []
    previous = 0
    skip_header = shape.has_header
    invalid = stats.invalid
    control = CONTROL.search
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if _is_field_limit(exc):
                lines = itertools.islice(io.StringIO(source.getvalue(), newline=""),
                                         previous, None)
                raise _long_field(lines, previous + 1, shape.delimiter or ",",
                                  shape.column_label) from None
            line = previous + 1
            previous = reader.line_num
            stats.rows += 1
            invalid.append(Problem(line, "", "invalid", f"not readable as CSV: {exc}"))
            continue
        line = previous + 1
        previous = reader.line_num
        if len(row) == 1:
            value = row[0].strip()
            if not value:
                stats.blank_lines += 1
                continue
            if skip_header:
                skip_header = False
                continue
            cell = value if column == 0 else None
        else:
            if not any(c.strip() for c in row):
                stats.blank_lines += 1
                continue
            if skip_header:
                skip_header = False
                continue
            cell = row[column].strip() if column < len(row) else None
        stats.rows += 1
        if cell is None:
            invalid.append(Problem(line, _raw(row, shape), "invalid",
                                   f"row has {len(row)} field{'s' if len(row) != 1 else ''}; "
                                   f"the identifier column ({label}) is missing"))
            continue
        if cell and len(cell) <= MAX_IDENTIFIER and not control(cell):
            batch.append((line, cell))
            if len(batch) >= batch_size:
                stats.valid += len(batch)
                if progress is not None:
                    progress(int(shape.size * min(previous / lines, 1.0)))
                yield batch
                batch = []
            continue
        reason = _check(cell)
        if reason is not None:
            invalid.append(Problem(line, cell[:80] if cell else _raw(row, shape), "invalid",
                                   reason if reason != "no identifier"
                                   else f"no identifier in {label}"))
            continue
        batch.append((line, cell))
        if len(batch) >= batch_size:
            stats.valid += len(batch)
            if progress is not None:
                progress(int(shape.size * min(previous / lines, 1.0)))
            yield batch
            batch = []
    if batch:
        stats.valid += len(batch)
        yield batch
    if progress is not None:
        progress(shape.size)


def _read_plain(text: str, shape: FileShape, stats: ParseStats, batch_size: int,
                progress: Callable[[int], None] | None) -> Iterator[list[tuple[int, str]]]:
    """Fast path for one unquoted value per line without control characters."""
    pieces = text.split("\n")
    if pieces and pieces[-1].strip() == "":
        pieces.pop()
    cells = [(number, cell) for number, cell in enumerate(map(str.strip, pieces), start=1)
             if cell]
    stats.blank_lines += len(pieces) - len(cells)
    if shape.has_header and cells:
        cells.pop(0)
    stats.rows += len(cells)
    too_long = [(n, c) for n, c in cells if len(c) > MAX_IDENTIFIER] if cells and max(
        len(c) for _, c in cells) > MAX_IDENTIFIER else []
    if too_long:
        for number, cell in too_long:
            if len(cell) > FIELD_LIMIT:  # refused as the CSV reader refuses it
                column = pieces[number - 1].index(cell[0]) + 1
                raise _long_field_message((number, column), 0, False, shape.column_label)
            stats.invalid.append(Problem(number, cell[:80], "invalid", _check(cell) or ""))
        cells = [(n, c) for n, c in cells if len(c) <= MAX_IDENTIFIER]
    for start in range(0, len(cells), batch_size):
        batch = cells[start:start + batch_size]
        stats.valid += len(batch)
        if progress is not None:
            progress(int(shape.size * (start + len(batch)) / len(cells)))
        yield batch
    if progress is not None:
        progress(shape.size)


def _raw(row: list[str], shape: FileShape) -> str:
    return (shape.delimiter or ",").join(row)[:80]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: formula-like text gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
