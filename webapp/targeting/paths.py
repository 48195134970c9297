"""Custom-field paths: how a criterion names a key of a member's custom fields, whatever the key.

Syntax
------

A custom-field criterion's ``field`` is ``custom_fields`` (or ``customFields``) followed by one
or more steps, each naming one object key, read left to right from the custom-fields object::

    field     = ( "custom_fields" / "customFields" ) 1*step
    step      = "." plain-key / "[" json-string "]"
    plain-key = 1*( ALPHA / DIGIT / "_" / "-" )          ; ASCII letters and digits
    json-string = a JSON string (RFC 8259 section 7): in double quotes, with the escapes
                  \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\u with four hex digits
                  (a pair of them for characters beyond U+FFFF)

So ``custom_fields.address.city`` is key ``address``, then key ``city``;
``custom_fields["Customer Type"]`` is the one key ``Customer Type``; ``custom_fields["a.b"]`` is
the one key ``a.b`` (a dot inside the quotes is part of the key); ``custom_fields["a\\"b"]`` is
the key ``a"b``; and the steps mix: ``custom_fields.attrs["ключ"]``. No white space is allowed
between steps. Every key is matched exactly (case and all); a step never indexes into a list.

Canonical form: a plain key is written ``.key`` and any other key ``["…"]`` as JSON writes it
without escaping non-ASCII characters (``json.dumps(key, ensure_ascii=False)``), so
``custom_fields["vip"]`` is stored as ``custom_fields.vip`` and the same path has one spelling.

Every key that can be stored can be named, with one exception: a key containing U+0000 or a
lone surrogate (U+D800 to U+DFFF) cannot be stored by either database, so it is refused when a
member is written (:func:`key_problem`) and in a criterion.
"""

from __future__ import annotations

import json
import re

CUSTOM_ROOT = "custom_fields"
CUSTOM_ALIAS_ROOT = "customFields"

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_PLAIN_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)")
_DECODER = json.JSONDecoder()
_UNSTORABLE = re.compile("[\u0000\ud800-\udfff]")


class PathError(ValueError):
    """A custom-field path that does not follow the syntax; the message says what is wrong."""


def is_custom(name: str) -> bool:
    """Whether a (canonical or alias) field name is a custom-field path."""
    for root in (CUSTOM_ROOT, CUSTOM_ALIAS_ROOT):
        if name.startswith(root) and name[len(root):len(root) + 1] in (".", "["):
            return True
    return False


def key_problem(key: str) -> str | None:
    """Why a custom-field key can never be stored or targeted, or None when it can."""
    found = _UNSTORABLE.search(key)
    if found is None:
        return None
    what = "U+0000" if found[0] == "\0" else "a lone surrogate"
    return f"key {json.dumps(key)} holds {what}, which no database stores"


def parse_path(steps: str) -> tuple[str, ...]:
    """The keys named by the steps after ``custom_fields`` (e.g. ``.a["b c"]``); PathError."""
    keys: list[str] = []
    i = 0
    while i < len(steps):
        plain = _PLAIN_STEP.match(steps, i)
        if plain:
            keys.append(plain[1])
            i = plain.end()
            continue
        if steps.startswith('["', i):
            try:
                key, end = _DECODER.raw_decode(steps, i + 1)
            except json.JSONDecodeError:
                raise PathError(f"the quoted key at character {i + 1} is not a JSON string "
                                '(write it as ["…"], escaping " and \\ as \\" and \\\\)'
                                ) from None
            if not steps.startswith("]", end):
                raise PathError(f"a quoted key ends with ] (after character {end})")
            problem = key_problem(key)
            if problem:
                raise PathError(problem)
            keys.append(key)
            i = end + 1
            continue
        raise PathError(
            "a custom field path is keys of letters, digits, '_' or '-' joined by '.', and any "
            'other key in quotes and brackets, e.g. custom_fields["Customer Type"]')
    if not keys:
        raise PathError("name a custom field, e.g. custom_fields.vip")
    return tuple(keys)


def path_steps(keys: tuple[str, ...] | list[str]) -> str:
    """The canonical steps naming `keys`: ``.plain`` or ``["other"]`` for each."""
    return "".join(f".{k}" if _PLAIN_KEY.fullmatch(k) else f"[{json.dumps(k, ensure_ascii=False)}]"
                   for k in keys)


def custom_field(keys: tuple[str, ...] | list[str]) -> str:
    """The canonical criterion field naming a custom-field path."""
    return CUSTOM_ROOT + path_steps(keys)


def is_plain_key(key: str) -> bool:
    """Whether a key is written without quotes (letters, digits, '_' and '-')."""
    return _PLAIN_KEY.fullmatch(key) is not None
