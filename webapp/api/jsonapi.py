"""Reading JSON:API requests and writing JSON:API responses.

Writes must be `application/vnd.api+json` (415 otherwise); the body is parsed strictly (no NaN,
no NUL characters, nothing that cannot be stored) and every problem is reported with a JSON
pointer into the request document. Query parameters are checked against what the route
accepts, so a misspelt filter is a 400 naming it rather than a silently ignored parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, request
from flask.globals import request_ctx
from flask_login import current_user

from webapp.api.errors import MEDIA_TYPE, ApiError, escape

#: The members JSON:API defines for a request document and for a resource object; JSON:API
#: allows no others, and neither does Beacon (400 naming the member, as the document says).
DOCUMENT_MEMBERS = ("data", "meta", "jsonapi", "links")
RESOURCE_MEMBERS = ("type", "id", "attributes", "relationships", "links", "meta")
MAX_DEPTH = 64
#: What in a UTF-8 body may hide a value `_check_values` refuses: a \u0000 escape, a surrogate
#: (escaped, or as raw bytes, which `json.loads` lets through with "surrogatepass"), 19 digits
#: in a row or a digit before an exponent (a number beyond 64 bits or infinity), an empty
#: member name. A body with none of them holds none of those values, so the walk that names
#: the pointer runs only over the bodies that might (a batch of 10,000 items: 0.4 s saved).
#: Each is searched on its own (one alternation of them all tries every branch at every byte:
#: 70 ms for 2 MB); the digit patterns in the body mapped to "0" (digits), "e" (exponent
#: letters) and " " (anything else), where they are substrings.
_SUSPECT = tuple(re.compile(p) for p in (rb'\\u0000', rb'\\[uU][dD][89a-fA-F]',
                                         rb'\xed[\xa0-\xbf]', rb'""\s*:'))
_NUMBER_SHAPES = bytes(48 if 48 <= c <= 57 else 101 if c in b"eE" else 32 for c in range(256))
_LONG_NUMBER = (b"0" * 19, b"0e")
_BRACKETS = re.compile(r"^[a-z_]+\[[^\]]*\]$")


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest (iteratively, so any depth is safe to measure)."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, level + 1) for item in items if isinstance(item, dict | list))
    return deepest


def _check_values(value: Any, pointer: str) -> None:
    """Refuse what the databases cannot store or compare: NUL characters, unpaired
    surrogates, numbers beyond 64 bits and non-finite numbers (1e999 parses as infinity)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, "invalid_string", "Text may not contain NUL (\\u0000) characters.",
                           pointer=pointer)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_string", "Text contains an unpaired UTF-16 surrogate.",
                           pointer=pointer) from None
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ApiError(422, "number_out_of_range", "Numbers must fit in 64 bits "
                           "(-9223372036854775808 to 9223372036854775807).", pointer=pointer,
                           title="Invalid attribute")
    elif isinstance(value, float):
        # The same range as whole numbers, so that one JSON Schema range describes every
        # number a request may hold (JSON Schema cannot tell 1e19 from 10000000000000000000).
        if not -(2.0**63) <= value <= 2.0**63:
            raise ApiError(422, "number_out_of_range", "Numbers must be finite and within "
                           "-9223372036854775808 to 9223372036854775807.", pointer=pointer,
                           title="Invalid attribute")
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "":
                raise ApiError(400, "invalid_member_name", "A member name has at least one "
                               "character (JSON:API).", pointer=f"{pointer}/")
            _check_values(key, pointer)
            _check_values(item, f"{pointer}/{escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_values(item, f"{pointer}/{index}")


def read_document() -> dict[str, Any]:
    """The request's JSON:API document: media type checked, JSON parsed, `data` present."""
    if request.mimetype != MEDIA_TYPE:
        raise ApiError(415, "unsupported_media_type",
                       f"Send the request body as {MEDIA_TYPE} (Content-Type header); got "
                       f"{request.mimetype or 'none'}.", title="Unsupported media type")
    params = {k for k in request.mimetype_params if k != "charset"}
    if params:
        raise ApiError(415, "unsupported_media_type",
                       f"The {MEDIA_TYPE} media type takes no parameters "
                       f"({', '.join(sorted(params))} given).", title="Unsupported media type")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "empty_body", "The request body is empty; send a JSON:API document "
                       'such as {"data": {...}}.', pointer="")
    try:
        document = json.loads(raw, parse_constant=_json_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "The body is not UTF-8 text.", pointer="") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc.msg} at line "
                       f"{exc.lineno}, column {exc.colno}.", pointer="") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}.",
                       pointer="") from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_document", "A JSON:API document is a JSON object with a "
                       "`data` member.", pointer="")
    if "data" not in document:
        raise ApiError(400, "missing_data", "The document has no `data` member.", pointer="/data")
    for name in document:
        if name not in DOCUMENT_MEMBERS:
            raise ApiError(400, "unknown_member", f"Unknown top-level member {name!r}; a "
                           f"request document has {', '.join(DOCUMENT_MEMBERS)}.",
                           pointer=f"/{escape(name)}")
        if name != "data" and not isinstance(document[name], dict):
            raise ApiError(400, "invalid_document", f"`{name}` must be an object.",
                           pointer=f"/{name}")
    if _depth(document) > MAX_DEPTH:
        raise ApiError(400, "too_deep", f"The document nests deeper than {MAX_DEPTH} levels.",
                       pointer="")
    if may_hold_unstorable(raw):
        _check_values(document, "")
    return document


def may_hold_unstorable(raw: bytes) -> bool:
    """False only when the body cannot hold a value `_check_values` refuses (see _SUSPECT);
    a body in UTF-16 or UTF-32 is always checked."""
    if not json.detect_encoding(raw).startswith("utf-8"):
        return True
    if any(pattern.search(raw) for pattern in _SUSPECT):
        return True
    shapes = raw.translate(_NUMBER_SHAPES)
    return any(shape in shapes for shape in _LONG_NUMBER)


def resource_object(document: dict[str, Any], resource_type: str, *,
                    resource_id: str | None = None, creating: bool = False) -> dict[str, Any]:
    """The single resource object of `document`, with its type (and id, for updates) checked.

    Creating, a client-generated id is refused (403, as JSON:API asks): the server assigns ids.
    """
    data = document["data"]
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_data", "`data` must be one resource object.",
                       pointer="/data")
    check_resource(data, resource_type, "/data", resource_id=resource_id)
    if creating and "id" in data:
        raise ApiError(403, "client_generated_id", "Beacon assigns ids; leave out `id` when "
                       "creating (members are found by external_id, segments by "
                       "customer_segment_id).", title="Not allowed", pointer="/data/id")
    return data


def check_resource(data: dict[str, Any], resource_type: str, pointer: str, *,
                   resource_id: str | None = None) -> None:
    """Check one resource object's type, id and member shapes; raises ApiError."""
    if "type" not in data:
        raise ApiError(400, "missing_type", f"The resource object needs "
                       f'"type": "{resource_type}".', pointer=f"{pointer}/type")
    if data["type"] != resource_type:
        raise ApiError(409, "type_mismatch", f"This route takes resources of type "
                       f'"{resource_type}", not {json.dumps(data["type"])}.',
                       pointer=f"{pointer}/type")
    if "id" in data and not isinstance(data["id"], str):
        raise ApiError(400, "invalid_id", "A resource object's id is a string (JSON:API).",
                       pointer=f"{pointer}/id")
    if resource_id is not None:
        if "id" in data and str(data["id"]) != resource_id:
            raise ApiError(409, "id_mismatch", f"The resource id {json.dumps(data['id'])} does "
                           f"not match the URL ({resource_id}).", pointer=f"{pointer}/id")
    for name in data:
        if name not in RESOURCE_MEMBERS:
            raise ApiError(400, "unknown_member", f"Unknown member {name!r} of the resource "
                           f"object; it has {', '.join(RESOURCE_MEMBERS)}.",
                           pointer=f"{pointer}/{escape(name)}")
    for member in ("attributes", "relationships", "meta", "links"):
        if member in data and not isinstance(data[member], dict):
            raise ApiError(400, "invalid_document", f"`{member}` must be an object.",
                           pointer=f"{pointer}/{member}")


def attributes_of(data: dict[str, Any], allowed: Iterable[str], *, pointer: str = "/data",
                  read_only: Iterable[str] = (), nullable: Iterable[str] | None = None
                  ) -> dict[str, Any]:
    """The resource's attributes, refusing unknown and read-only ones with their pointers.

    With `nullable`, null is refused for every other attribute: null is accepted exactly where
    the OpenAPI document allows it (where the attribute can be null in answers too).
    """
    attributes = data.get("attributes") or {}
    allowed = set(allowed)
    read_only = set(read_only)
    errors = []
    for name in attributes:
        if name in read_only:
            errors.append((name, f"{name} is read-only."))
        elif name not in allowed:
            errors.append((name, f"Unknown attribute {name!r}; the attributes are "
                                 f"{', '.join(sorted(allowed))}."))
        elif nullable is not None and attributes[name] is None and name not in nullable:
            errors.append((name, f"{name} cannot be null: give a value, or leave it out."))
    if errors:
        from webapp.api.errors import error_object

        raise ApiError(422, errors=[error_object(
            422, "invalid_attribute" if name in allowed else "unknown_attribute", message,
            title="Invalid attribute", pointer=f"{pointer}/attributes/{escape(name)}")
            for name, message in errors])
    return dict(attributes)


def relationship_linkage(data: dict[str, Any], name: str, resource_type: str, *,
                         required: bool = True, pointer: str = "/data") -> str | None:
    """The id of a to-one relationship's resource identifier, checked; raises ApiError."""
    where = f"{pointer}/relationships/{name}"
    relationships = data.get("relationships") or {}
    rel = relationships.get(name)
    if rel is None:
        if required:
            raise ApiError(422, "missing_relationship", f"The `{name}` relationship is "
                           f'required: {{"data": {{"type": "{resource_type}", "id": "..."}}}}.',
                           pointer=where)
        return None
    if not isinstance(rel, dict) or not isinstance(rel.get("data"), dict):
        raise ApiError(400, "invalid_relationship", f"`{name}` must be "
                       f'{{"data": {{"type": "{resource_type}", "id": "..."}}}}.',
                       pointer=where)
    linkage = rel["data"]
    if linkage.get("type") != resource_type:
        raise ApiError(409, "type_mismatch", f"The `{name}` relationship names resources of "
                       f'type "{resource_type}".', pointer=f"{where}/data/type")
    ident = linkage.get("id")
    if not isinstance(ident, str | int) or isinstance(ident, bool) or str(ident) == "":
        raise ApiError(422, "invalid_id", "A resource identifier's id is a non-empty string.",
                       pointer=f"{where}/data/id")
    return str(ident)


def identifier_list(document: dict[str, Any], *, limit: int) -> list[Any]:
    """The `data` array of a to-many relationship request, bounded by `limit` (413 beyond)."""
    data = document["data"]
    if not isinstance(data, list):
        raise ApiError(400, "invalid_data", "`data` must be an array of resource identifiers "
                       '({"type": ..., "id": ...}).', pointer="/data")
    if len(data) > limit:
        raise ApiError(413, "too_many_items", f"At most {limit:,} items per request "
                       f"({len(data):,} given); split the request.", pointer="/data",
                       title="Too large")
    return data


# --- query parameters -----------------------------------------------------------------------

def check_query(allowed: Iterable[str]) -> None:
    """Refuse query parameters the route does not know (400 naming the parameter)."""
    allowed = set(allowed)
    for name in request.args:
        if name not in allowed:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise ApiError(400, "unknown_parameter", f"Unknown query parameter {name!r}; this "
                           f"route accepts: {accepted}.", parameter=name)
        for value in request.args.getlist(name):
            if "\x00" in value:
                raise ApiError(400, "invalid_parameter", "A parameter may not contain NUL.",
                               parameter=name)
        if len(request.args.getlist(name)) > 1:
            raise ApiError(400, "repeated_parameter", f"Give {name} once.", parameter=name)


def query_value(name: str, *, max_length: int = 1000) -> str | None:
    """A query parameter's value (None when absent), bounded in length."""
    value = request.args.get(name)
    if value is not None and len(value) > max_length:
        raise ApiError(400, "invalid_parameter", f"{name} is longer than {max_length} "
                       "characters.", parameter=name)
    return value


# --- responses ------------------------------------------------------------------------------

def respond(document: dict[str, Any], status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """A JSON:API document as a response."""
    response = Response(json.dumps(document, separators=(",", ":"), default=str),
                        status=status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def no_content() -> Response:
    """204 No Content (a successful delete)."""
    return Response(status=204)


def link(endpoint: str, **values: Any) -> str:
    """An absolute URL (JSON:API links are URIs), as an ASCII URI.

    Built by the request's own URL adapter: url_for's extras (relative endpoints, anchors,
    URL defaults) are not used by API links and cost more than the build itself.
    """
    return request_ctx.url_adapter.build(endpoint, values, force_external=True)


def self_link() -> str:
    """The absolute URL of this request, query string included, as an ASCII URI."""
    base = link(request.endpoint, **request.view_args)
    if not request.args:
        return base
    return base + "?" + urlencode(list(request.args.items(multi=True)))


def actor_label() -> str:
    """How this request's principal is named in events, history and audit lines."""
    token = getattr(g, "api_token", None)
    if token is not None:
        return token.label
    if current_user.is_authenticated:
        return current_user.label
    return "api"


def actor_id() -> int | None:
    """The signed-in user's id (None for a token: tokens are not users)."""
    token = getattr(g, "api_token", None)
    if token is None and current_user.is_authenticated:
        return current_user.id
    return None


def batch_limit() -> int:
    """The most items one request may carry (LIMIT_BATCH, 10,000 by default)."""
    return int(current_app.config.get("LIMIT_BATCH", 10_000))


def is_bracketed(name: str) -> bool:
    """Whether a query parameter looks like a JSON:API family parameter (filter[x])."""
    return bool(_BRACKETS.match(name))
