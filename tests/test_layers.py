"""Layers import downward only: the pure core, then the services, then the web, API and CLI.

Every module's imports are read with `ast` (those inside functions too), so a layer that
reaches upward fails here before anyone has to notice it in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEBAPP = Path(__file__).resolve().parent.parent / "webapp"

CORE = "webapp.targeting"
SERVICES = "webapp.services"

# Top-level modules of the web edge (request handling, templates, the CLI and the demo seed
# that drive the services). Every package of webapp/ other than the core and the services is
# a blueprint (the dashboard areas and the API) and belongs to the edge as well.
EDGE_MODULES = ("webapp.access", "webapp.cli", "webapp.demo", "webapp.errors", "webapp.htmx",
                "webapp.sessions", "webapp.templating")

# What of Flask serves a request or renders a page; services may use the app (current_app,
# has_app_context) for its configuration, never these.
REQUEST_AND_TEMPLATES = (
    "flask.Blueprint", "flask.Response", "flask.abort", "flask.flash", "flask.g",
    "flask.globals", "flask.has_request_context", "flask.jsonify", "flask.make_response",
    "flask.redirect", "flask.render_template", "flask.render_template_string", "flask.request",
    "flask.session", "flask.sessions", "flask.stream_template", "flask.stream_with_context",
    "flask.templating", "flask.url_for", "flask_login", "flask_wtf", "jinja2_fragments",
    "wtforms",
)

# Service code that still touches the request, named here so that nothing else may; each
# entry must still be true (the test below fails once it is fixed, so the list only shrinks).
KNOWN_EXCEPTIONS = {
    # load_bearer_token resolves the request's Authorization header into g.api_token.
    ("webapp/services/tokens.py", "flask.request"),
    ("webapp/services/tokens.py", "flask.g"),
    ("webapp/services/tokens.py", "webapp.access"),
    # where_used links each use to its dashboard page when called inside a request.
    ("webapp/services/segments.py", "flask.has_request_context"),
    ("webapp/services/segments.py", "flask.url_for"),
}


def module_name(path: Path) -> str:
    """The dotted name of a file under webapp/ (a package is named by its folder)."""
    parts = list(path.relative_to(WEBAPP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    """Whether a dotted name under webapp is a module or package of this repository."""
    path = WEBAPP.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_names(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a module imports: modules, or module.attribute."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                # `from webapp import create_app` imports the app factory, i.e. webapp itself.
                if base.split(".")[0] == "webapp" and not is_module(target):
                    target = base
                found.append((node.lineno, target))
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def edge_packages() -> list[str]:
    """The blueprint packages (dashboard areas and the API): every package but core/services."""
    return sorted(f"webapp.{p.parent.name}" for p in WEBAPP.glob("*/__init__.py")
                  if f"webapp.{p.parent.name}" not in (CORE, SERVICES))


def upward_imports(path: Path, source: str) -> list[tuple[str, int, str]]:
    """(file, line, name) of each import that reaches above the file's layer."""
    module = module_name(path)
    edge = ("webapp", *edge_packages(), *EDGE_MODULES)
    problems = []
    for line, name in imported_names(source, module, is_package=path.name == "__init__.py"):
        root = name.split(".")[0]
        if within(module, CORE):
            # The pure core: no Flask of any kind, and of the application only itself.
            bad = root == "flask" or root.startswith("flask_") \
                or (root == "webapp" and not within(name, CORE))
        elif within(module, SERVICES):
            bad = any(name == e if e == "webapp" else within(name, e) for e in edge) \
                or any(within(name, r) for r in REQUEST_AND_TEMPLATES)
        else:
            bad = False
        if bad:
            problems.append((path.relative_to(WEBAPP.parent).as_posix(), line, name))
    return problems


def layer_files(package: str) -> list[Path]:
    return sorted(WEBAPP.parent.joinpath(*package.split(".")).rglob("*.py"))


def test_the_layers_are_where_the_test_looks():
    core, services = layer_files(CORE), layer_files(SERVICES)
    assert len(core) >= 5 and len(services) >= 10
    assert "webapp.segments" in edge_packages() and "webapp.api" in edge_packages()
    assert "webapp.services" not in edge_packages()


@pytest.mark.parametrize("layer", [CORE, SERVICES])
def test_no_layer_imports_upward(layer):
    problems = [problem for path in layer_files(layer)
                for problem in upward_imports(path, path.read_text(encoding="utf-8"))
                if (problem[0], problem[2]) not in KNOWN_EXCEPTIONS]
    assert problems == [], "\n".join(f"{file}:{line} imports {name}, above {layer}"
                                     for file, line, name in problems)


def test_known_exceptions_are_still_there():
    present = {(file, name) for layer in (CORE, SERVICES) for path in layer_files(layer)
               for file, _, name in upward_imports(path, path.read_text(encoding="utf-8"))}
    assert KNOWN_EXCEPTIONS - present == set(), "fixed: remove these from KNOWN_EXCEPTIONS"


@pytest.mark.parametrize(("file", "source", "expected"), [
    ("targeting/engine.py", "from flask import current_app\n", "flask.current_app"),
    ("targeting/engine.py", "import flask_sqlalchemy\n", "flask_sqlalchemy"),
    ("targeting/sql.py", "def f():\n    from webapp.services import membership\n",
     "webapp.services.membership"),
    ("targeting/sql.py", "from webapp.api.errors import ApiError\n", "webapp.api.errors"),
    ("targeting/sql.py", "from webapp.models import Member\n", "webapp.models"),
    ("targeting/graph.py", "from ..segments import views\n", "webapp.segments.views"),
    ("services/offers.py", "from webapp.offers.forms import OfferForm\n", "webapp.offers.forms"),
    ("services/offers.py", "def f():\n    from webapp.api import bp\n", "webapp.api"),
    ("services/offers.py", "from webapp import create_app\n", "webapp"),
    ("services/offers.py", "from webapp.htmx import render\n", "webapp.htmx"),
    ("services/offers.py", "from flask import current_app, request\n", "flask.request"),
    ("services/offers.py", "from flask import render_template\n", "flask.render_template"),
    ("services/offers.py", "from . import tokens\nfrom .. import segments\n", "webapp.segments"),
])
def test_an_upward_import_is_caught(file, source, expected):
    found = [name for _, _, name in upward_imports(WEBAPP / file, source)]
    assert expected in found


@pytest.mark.parametrize(("file", "source"), [
    ("targeting/engine.py", "from webapp.targeting import schema as s\nimport sqlalchemy\n"),
    ("services/offers.py", "from flask import current_app\nfrom webapp.models import Offer\n"
                           "from webapp.targeting import matches\n"
                           "from webapp.timeutil import utcnow\n"
                           "from webapp.services.membership import Cause\n"
                           "from . import audit\n"),
    ("segments/views.py", "from flask import request\nfrom webapp.services import segments\n"),
])
def test_a_downward_import_is_allowed(file, source):
    assert upward_imports(WEBAPP / file, source) == []
