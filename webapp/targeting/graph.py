"""Segment references: who names whom in `segment` criteria, cycle refusal, evaluation order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp.targeting.criteria import Definition, parse_definition
from webapp.targeting.errors import SegmentDefinitionError


def _refs(definition: Any) -> frozenset[int]:
    if isinstance(definition, Definition):
        return definition.references
    return parse_definition(definition).references


def cycle_path(definitions: Mapping[int, Any]) -> list[int] | None:
    """A reference cycle as [a, b, ..., a], or None; ids missing from the mapping are leaves."""
    graph = {sid: sorted(_refs(d)) for sid, d in definitions.items()}
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for root in sorted(graph):
        if colour[root] != white:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path = [root]
        colour[root] = grey
        while stack:
            sid, i = stack[-1]
            nexts = graph.get(sid, [])
            if i < len(nexts):
                stack[-1] = (sid, i + 1)
                nxt = nexts[i]
                if nxt not in graph:
                    continue
                if colour[nxt] == grey:
                    return path[path.index(nxt):] + [nxt]
                if colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                colour[sid] = black
                stack.pop()
                path.pop()
    return None


def find_cycle(definitions: Mapping[int, Any], names: Mapping[int, str] | None = None) -> None:
    """Raise SegmentDefinitionError naming the cycle when `segment` criteria reference in a loop."""
    cycle = cycle_path(definitions)
    if cycle is None:
        return
    names = names or {}
    shown = " -> ".join(f"{names[i]} (#{i})" if i in names else f"#{i}" for i in cycle)
    raise SegmentDefinitionError(f"segment criteria form a cycle: {shown}")


def dependency_order(definitions: Mapping[int, Any]) -> list[int]:
    """Segment ids ordered so every segment comes after the segments it references."""
    find_cycle(definitions)
    order: list[int] = []
    done: set[int] = set()

    def visit(sid: int) -> None:
        if sid in done or sid not in definitions:
            return
        done.add(sid)
        for ref in sorted(_refs(definitions[sid])):
            visit(ref)
        order.append(sid)

    for sid in sorted(definitions):
        visit(sid)
    return order


def dependents(definitions: Mapping[int, Any], segment_id: int) -> list[int]:
    """Every segment that references `segment_id`, directly or through others, in update order."""
    reverse: dict[int, set[int]] = {}
    for sid, d in definitions.items():
        for ref in _refs(d):
            reverse.setdefault(ref, set()).add(sid)
    seen: set[int] = set()
    todo = [segment_id]
    while todo:
        for nxt in reverse.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return [sid for sid in dependency_order(definitions) if sid in seen]
