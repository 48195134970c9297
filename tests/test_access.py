"""Route x role: every registered URL rule refuses whoever its declared level excludes.

A view without an access declaration is refused to everyone, and fails here, so a new route
cannot ship without its check.
"""

from __future__ import annotations

import pytest

from webapp.access import LEVELS, role_can

ROLES = ("admin", "marketer", "support")
SAMPLE_ARGS = {"int": "1", "string": "x", "path": "x",
               "uuid": "00000000-0000-0000-0000-000000000000", "default": "x"}


def _url(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        converter = type(rule._converters[arg]).__name__.lower().replace("converter", "")
        value = SAMPLE_ARGS.get("int" if converter in ("integer", "int") else converter, "x")
        url = url.replace(f"<{arg}>", value)
        for prefix in ("int:", "string:", "path:", "uuid:"):
            url = url.replace(f"<{prefix}{arg}>", value)
    return url


def _rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "auth.logout"):  # logging out would end the walk
            continue
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        yield rule, method


def test_every_view_declares_its_access_level(app):
    undeclared = [rule.endpoint for rule, _ in _rules(app)
                  if getattr(app.view_functions[rule.endpoint], "access_level", None) not in LEVELS]
    assert undeclared == []


@pytest.mark.parametrize("role", (None,) + ROLES)
def test_route_role_matrix(app, client, auth, role):
    if role:
        auth.login(role)
    failures = []
    for rule, method in _rules(app):
        level = app.view_functions[rule.endpoint].access_level
        url = _url(rule)
        response = client.open(url, method=method)
        status = response.status_code
        allowed = role_can(role, level)
        if allowed:
            if status in (401, 403) or (role is None and level != "public" and status == 302):
                failures.append(f"{method} {url} ({level}) refused {role}: {status}")
        else:
            api = url.startswith("/api/")
            if role is None:
                expected = (401,) if api else (302, 401)
                if status not in expected or (status == 302 and "/login" not in response.location):
                    failures.append(f"{method} {url} ({level}) let anonymous in: {status}")
            elif status != 403:
                failures.append(f"{method} {url} ({level}) let {role} in: {status}")
        if status >= 500:
            failures.append(f"{method} {url} crashed for {role}: {status}")
    assert failures == []
