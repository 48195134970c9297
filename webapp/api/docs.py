"""The API reference page in the dashboard, generated from the OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import render_template, request
from markupsafe import Markup, escape

from webapp.access import access
from webapp.api import bp
from webapp.api.openapi import GROUP_EXAMPLE, document


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref into the component schemas."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def type_words(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A schema's type in a few words: 'string or null', 'list of Criterion'."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(type_words(s, components) for s in schema["anyOf"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + type_words(schema.get("items", {}), components)
    if isinstance(kind, list):
        return " or ".join(kind)
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return kind


def _shape(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A schema resolved, and for a choice of shapes its first named one (a criterion for
    'a criterion or a group')."""
    schema = resolve(schema, components)
    if "anyOf" in schema:
        schema = resolve(next((s for s in schema["anyOf"] if "$ref" in s), schema["anyOf"][0]),
                         components)
    return schema


def rows(schema: dict[str, Any], components: dict[str, Any], prefix: str = "",
         depth: int = 0) -> list[dict[str, Any]]:
    """The fields of a request or response body, flattened to dotted names."""
    schema = resolve(schema, components)
    if schema.get("type") == "array" and depth < 4:
        return rows(schema.get("items", {}), components, prefix + "[]", depth + 1)
    if "anyOf" in schema and depth < 4:
        first = next((s for s in schema["anyOf"] if "$ref" in s), schema["anyOf"][0])
        return rows(first, components, prefix, depth + 1)
    schema = _shape(schema, components)  # a criterion or a group: the criterion's fields
    out = []
    required = set(schema.get("required", []))
    for name, sub in (schema.get("properties") or {}).items():
        full = f"{prefix}.{name}" if prefix else name
        target = resolve(sub, components)
        nested = target.get("type") == "object" and target.get("properties") and depth < 4 \
            and name not in ("links", "meta", "source")
        listed = target.get("type") == "array" and depth < 4 and isinstance(
            target.get("items"), dict) and "properties" in _shape(target["items"], components)
        out.append({"name": full, "type": type_words(sub, components),
                    "required": name in required,
                    "description": target.get("description", "")})
        if nested or listed:
            out.extend(rows(target, components, full, depth + 1))
    return out


@bp.route("/docs", methods=["GET"])
@access("read")
def docs():
    """The API reference: every route with its access, parameters, bodies and answers."""
    spec = document(request.url_root.rstrip("/") + "/api/v1")
    components = spec["components"]["schemas"]
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            body = next(iter(body.values()), None)
            answers = []
            for code, response in op["responses"].items():
                content = next(iter(response.get("content", {}).values()), None)
                schema = content.get("schema") if content else None
                answers.append({"code": code, "description": response["description"],
                                "schema": type_words(schema, components) if schema else "",
                                "fields": rows(schema, components) if schema and code < "300"
                                else []})
            groups.setdefault(op["tags"][0], []).append({
                "method": method.upper(), "path": path, "op": op,
                "anchor": op["operationId"],
                "body_fields": rows(body["schema"], components) if body else [],
                "example": json.dumps(body["example"], indent=2) if body and "example" in body
                else None,
                "answers": answers,
            })
    from webapp.api.seed_guide import SEED_SYSTEMS

    operations = {(method, path): op["operationId"]
                  for path, methods in spec["paths"].items() for method, op in methods.items()}
    return render_template("api/docs.html", spec=spec, groups=groups,
                           seed_systems=SEED_SYSTEMS, operations=operations,
                           base=spec["servers"][0]["url"],
                           intro=with_code(spec["info"]["description"]), code=with_code,
                           group_example=json.dumps(GROUP_EXAMPLE, indent=2),
                           signature_header=_signature_header())


def _signature_header() -> str:
    """The webhook signature header's name, from the delivery module."""
    try:
        from webapp.services.webhook_delivery import SIGNATURE_HEADER
    except ImportError:
        return "Beacon-Signature"
    return SIGNATURE_HEADER


def with_code(text: str) -> Markup:
    """Plain text with `backticked` spans shown as code (everything else escaped)."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))
