"""Segment membership for one member: the public entry points (SPEC §3).

`evaluate_segment` (membership and its explanation), `matches` (membership only) and
`compile_segment` (a fast matcher for bulk use). The explanation tree's nodes are described in
:mod:`webapp.targeting.result`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, tzinfo
from typing import Any

from webapp.targeting.cache import cached_definition
from webapp.targeting.compiler import compile_definition
from webapp.targeting.env import Env, Member, _shared_env, make_env
from webapp.targeting.result import (
    SegmentResult,
    _new_result,
    _override_verdict,
    explain_membership,
)


def compile_segment(definition: Any, *, now: datetime | None = None, tz: str | tzinfo = "UTC"
                    ) -> Callable[..., bool]:
    """A fast matcher for bulk use: `matcher(member, memberships=None) -> bool` (rules only).

    `now` is fixed when the matcher is made; a static definition never matches (its members are
    its list); overrides are not applied.
    """
    compiled = compile_definition(definition)
    env = make_env(now, tz)
    match = compiled.match

    def with_memberships(member: Member, memberships: Collection[int]) -> bool:
        return match(member, Env(now=env.now, tz=env.tz, today=env.today,
                                 in_segment=frozenset(memberships).__contains__))
    return compiled.bind(env, with_memberships)


def evaluate_segment(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
                     override: str | None = None, now: datetime | None = None,
                     memberships: Collection[int] | Callable[[int], bool] | None = None,
                     tz: str | tzinfo = "UTC") -> SegmentResult:
    """Effective membership of one member in one segment (SPEC §3), with its explanation.

    `matched` is decided by the compiled definition; the explanation tree is built when first
    read (see :class:`SegmentResult`). Invalid definitions, overrides and zones raise here.
    """
    compiled = cached_definition(segment)
    if memberships is None:
        env = _shared_env(now, tz)
        rules = compiled.rules
        if rules is not None and override is None:  # the common case, in short
            result = _new_result(SegmentResult)
            result._matched = rules(member, env)
            result._tree = None
            result._later = (compiled, member, env, on_list, None)
            return result
        if compiled.segment_criteria:
            # Explaining reads the memberships, so this raises the missing-memberships error
            # exactly as before, at the call.
            matched, tree = explain_membership(compiled, member, env, on_list=on_list,
                                               override=override)
            return SegmentResult(matched, tree)
    elif callable(memberships):
        # The caller's function may have effects or fail: ask it exactly as before, now.
        env = make_env(now, tz, memberships)
        matched, tree = explain_membership(compiled, member, env, on_list=on_list,
                                           override=override)
        return SegmentResult(matched, tree)
    else:
        env = make_env(now, tz, memberships)
    if override is None:
        matched = on_list if compiled.static else compiled.match(member, env)
    else:
        matched = _override_verdict(override)
    result = _new_result(SegmentResult)
    result._matched = matched
    result._tree = None
    result._later = (compiled, member, env, on_list, override)
    return result


def matches(segment: dict[str, Any], member: dict[str, Any], *, on_list: bool = False,
            override: str | None = None, now: datetime | None = None,
            memberships: Collection[int] | Callable[[int], bool] | None = None,
            tz: str | tzinfo = "UTC") -> bool:
    """Effective membership only (no explanation): `evaluate_segment(...).matched`, as a bool."""
    if override is not None:
        return _override_verdict(override)
    compiled = cached_definition(segment)
    if compiled.static:
        return on_list
    if memberships is None:
        env = _shared_env(now, tz)
    else:
        env = make_env(now, tz, memberships)
    return compiled.match(member, env)
