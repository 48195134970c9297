"""The compiled-definition cache: definitions dicts compiled once, recompiled when edited."""

from __future__ import annotations

import copy
from typing import Any

from webapp.targeting.compiler import CompiledDefinition, compile_definition

_BY_TEXT: dict[str, CompiledDefinition] = {}
_BY_ID: dict[int, tuple[Any, Any, CompiledDefinition]] = {}
_CACHE_LIMIT = 4096


class _Strict:
    """A snapshot leaf equal only to a value of the same type: `==` alone has True == 1 == 1.0."""

    __slots__ = ("value", "cls")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: Any) -> None:
        self.value = value
        self.cls = value.__class__

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.cls and other == self.value


def _snapshot(value: Any) -> Any:
    """A deep copy to compare a definition against with one `==` (other leaves strict)."""
    cls = value.__class__
    if cls is str or value is None:
        return value
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_snapshot(v) for v in value)
    if cls in (bool, int, float):
        return _Strict(value)
    return _Strict(copy.deepcopy(value))


def cached_definition(segment: dict[str, Any]) -> CompiledDefinition:
    """The compiled form of a definition dict, cached (changed contents are recompiled).

    The fast path keeps a reference to the dict (so its id cannot be reused) and a strict
    snapshot to notice in-place edits; otherwise the definition's repr (which tells True, 1
    and 1.0 apart, unlike ==) is the key.
    """
    hit = _BY_ID.get(id(segment))
    if hit is not None and hit[0] is segment and hit[1] == segment:
        return hit[2]
    key = repr(segment)
    compiled = _BY_TEXT.get(key)
    if compiled is None:
        compiled = compile_definition(segment)
        if len(_BY_TEXT) >= _CACHE_LIMIT:
            _BY_TEXT.clear()
        _BY_TEXT[key] = compiled
    if len(_BY_ID) >= _CACHE_LIMIT:
        _BY_ID.clear()
    try:
        _BY_ID[id(segment)] = (segment, _snapshot(segment), compiled)
    except (TypeError, copy.Error):
        pass
    return compiled
