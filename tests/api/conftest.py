"""API test fixtures: token-authenticated clients whose every response is checked against the
official JSON:API 1.0 schema (tests/data/conformance/jsonapi/schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from webapp.services.tokens import create_token

MEDIA = "application/vnd.api+json"
JSONAPI_DATA = Path(__file__).resolve().parents[1] / "data" / "conformance" / "jsonapi"
SCHEMA_PATH = JSONAPI_DATA / "schema.json"


def _fix_patterns(node: Any) -> Any:
    """python-jsonschema drops an empty pattern: rewrite patternProperties "" to "^"."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "patternProperties" and isinstance(value, dict):
                out[key] = {("^" if k == "" else k): _fix_patterns(v) for k, v in value.items()}
            else:
                out[key] = _fix_patterns(value)
        return out
    if isinstance(node, list):
        return [_fix_patterns(v) for v in node]
    return node


def _is_absolute_uri(value: object) -> bool:
    """format "uri": an absolute URI with a scheme and a host (no optional package needed)."""
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and " " not in value


@pytest.fixture(scope="session")
def jsonapi_validator():
    """A Draft 7 validator of JSON:API response documents, checking formats (uri)."""
    schema = _fix_patterns(json.loads(SCHEMA_PATH.read_text()))
    checker = jsonschema.FormatChecker()
    checker.checks("uri")(_is_absolute_uri)
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def _body_and_type(response) -> tuple[bytes, str]:
    """The body and media type of a Flask test response or a schemathesis response."""
    if hasattr(response, "get_data"):
        return response.get_data(), response.mimetype
    content_type = response.headers.get("Content-Type") or response.headers.get("content-type")
    if isinstance(content_type, list):
        content_type = content_type[0]
    return response.content or b"", (content_type or "").split(";")[0].strip()


def assert_jsonapi(validator, response) -> None:
    """Fail unless the response body is a valid JSON:API document of the right media type."""
    body, media_type = _body_and_type(response)
    if response.status_code == 204:
        assert body == b""
        return
    assert media_type == MEDIA, (response.status_code, media_type, body[:300])
    document = json.loads(body)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


class ApiClient:
    """A test client that sends a bearer token and JSON:API bodies and validates every answer."""

    def __init__(self, client, token: str | None, validator):
        self.client = client
        self.token = token
        self.validator = validator

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None,
                content_type: str | None = MEDIA, headers: dict | None = None,
                validate: bool = True, **kwargs):
        """Send a request to /api/v1<path>; returns the response after validating it."""
        all_headers = dict(headers or {})
        if self.token:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw
        if body is not None:
            data = json.dumps(body)
        if data is not None and content_type:
            all_headers["Content-Type"] = content_type
        url = path if path.startswith("http") or path.startswith("/api/") else "/api/v1" + path
        response = self.client.open(url, method=method, data=data, headers=all_headers,
                                    **kwargs)
        if validate:
            assert_jsonapi(self.validator, response)
        return response

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw):
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, body: Any = None, **kw):
        return self.request("DELETE", path, body, **kw)


@pytest.fixture
def token_for(app):
    """Create an API token of a role; returns the raw token."""
    def make(role: str = "admin", name: str | None = None) -> str:
        _, raw = create_token(name or f"{role}-token", role)
        return raw
    return make


@pytest.fixture
def api_as(client, token_for, jsonapi_validator):
    """An ApiClient authenticated with a new token of the given role."""
    def make(role: str = "admin") -> ApiClient:
        return ApiClient(client, token_for(role), jsonapi_validator)
    return make


@pytest.fixture
def api(api_as):
    """An admin ApiClient."""
    return api_as("admin")


def errors_of(response) -> list[dict]:
    """The error objects of an error response."""
    return response.get_json(force=True)["errors"]
