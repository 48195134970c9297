"""Cursor pagination: `page[size]` (default 50, at most 100) and an opaque `page[cursor]`.

A cursor is the sort key of the last item of the previous page, base64url-encoded JSON, so a
page never skips or repeats rows when others are inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from flask import request
from sqlalchemy import Select
from werkzeug.urls import iri_to_uri

from webapp.api.errors import ApiError
from webapp.extensions import db

DEFAULT_SIZE = 50
MAX_SIZE = 100
PAGE_PARAMS = ("page[size]", "page[cursor]")


def page_size(default: int = DEFAULT_SIZE, maximum: int = MAX_SIZE, *,
              parameter: str = "page[size]") -> int:
    """The requested page size; 400 naming the parameter when it is not 1..maximum."""
    raw = request.args.get(parameter)
    if raw is None:
        return default
    if not raw.strip().isdigit() or len(raw.strip()) > 6:
        raise ApiError(400, "invalid_page_size", f"{parameter} is a whole number from 1 to "
                       f"{maximum}.", parameter=parameter)
    size = int(raw)
    if not 1 <= size <= maximum:
        raise ApiError(400, "invalid_page_size", f"{parameter} is from 1 to {maximum} "
                       f"({size} given).", parameter=parameter)
    return size


def encode_cursor(key: Any) -> str:
    """An opaque cursor for a sort key."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode(
        ).rstrip("=")


def decode_cursor(kind: type | tuple[type, ...], parameter: str = "page[cursor]") -> Any:
    """The sort key in `page[cursor]` (None when absent); 400 when it is not one of ours."""
    raw = request.args.get(parameter)
    if raw is None or raw == "":
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        key = None
    if isinstance(key, int) and not -(2**63) <= key < 2**63:
        key = None
    if isinstance(key, str) and (len(key) > 255 or not key.isprintable()):
        key = None
    if not isinstance(key, kind) or isinstance(key, bool):
        raise ApiError(400, "invalid_cursor", f"{parameter} is not a cursor this route "
                       "returned; use the `next` link of a previous page.", parameter=parameter)
    return key


def next_link(cursor: str, parameter: str = "page[cursor]") -> str:
    """This request's absolute URL with the cursor replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != parameter]
    args.append((parameter, cursor))
    return iri_to_uri(request.base_url) + "?" + urlencode(args)


def keyset_page(query: Select, key: Any, kind: type = int, *, size: int | None = None,
                descending: bool = False) -> tuple[list, dict[str, str]]:
    """One page of `query` ordered by `key` (newest first when `descending`) after the
    request's cursor, with its links.

    Reads page[size] (unless the caller read the size already) and page[cursor]; returns
    the rows and {"self", "next"?} links.
    """
    from webapp.api.jsonapi import self_link

    size = size or page_size()
    after = decode_cursor(kind)
    if after is not None:
        query = query.where(key < after if descending else key > after)
    order = key.desc() if descending else key
    rows = list(db.session.scalars(query.order_by(order).limit(size + 1)))
    links = {"self": self_link()}
    if len(rows) > size:
        rows = rows[:size]
        links["next"] = next_link(encode_cursor(getattr(rows[-1], key.key)))
    return rows, links
