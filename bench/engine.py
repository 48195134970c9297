"""Benchmark the segment evaluator against flagsmith-flag-engine on the same segments and members.

Side by side in one run (the engines take turns on chunks of work; medians of rounds).

Single-segment evaluations per second, against flagsmith's `is_context_in_segment` (which
answers a bare boolean and explains nothing):

1. `evaluate_segment(definition, member, now=...).matched` — the issue's entry point deciding
   membership; the explanation is not read, so it is not built (the target measure);
2. the same call with its explanation read (so built), and
3. also serialized (`json.dumps(result.explanation)`), what a caller showing the tree pays;
   both reported with their own speedup against the same boolean reference;
4. `matches(definition, member, now=...)`, the boolean-only entry point;
5. a `compile_segment` matcher made once per definition.

Members per second evaluated against 200 segments (ours: the `compile_segment` matchers;
flagsmith: `get_evaluation_result` with the 200 segments in the context).

Both engines are first checked to give the same answers on these segments and members (and
ours to agree with itself: every path above, and the explanation tree's verdict).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench._util import measure, result
from webapp.targeting import compile_segment, evaluate_segment, matches

TIERS = ["bronze", "silver", "gold", "platinum"]
PLANS = ["free", "pro", "team"]
TARGET = 3.0


def make_members(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Members with the attributes both engines can target."""
    return [{"external_id": f"m{i}", "tier": rng.choice(TIERS), "points": rng.randint(0, 5000),
             "xp": rng.randint(0, 1000), "coins": rng.randint(0, 100),
             "custom_fields": {"plan": rng.choice(PLANS)}} for i in range(n)]


def make_segments(n: int, rng: random.Random) -> list[tuple[dict[str, Any], list[dict]]]:
    """Pairs of (Beacon definition, flagsmith conditions) meaning the same thing."""
    out = []
    for _ in range(n):
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for _ in range(rng.randint(2, 5)):
            kind = rng.randrange(7)
            if kind == 0:
                t = rng.choice(TIERS)
                ours.append({"field": "tier", "operator": "equals", "value": t})
                theirs.append({"property": "tier", "operator": "EQUAL", "value": t})
            elif kind == 1:
                ts = rng.sample(TIERS, 2)
                ours.append({"field": "tier", "operator": "in", "value": ts})
                theirs.append({"property": "tier", "operator": "IN", "value": ts})
            elif kind == 2:
                t = rng.choice(TIERS)
                ours.append({"field": "tier", "operator": "not_equals", "value": t})
                theirs.append({"property": "tier", "operator": "NOT_EQUAL", "value": t})
            elif kind == 3:
                v = rng.randint(0, 4000)
                ours.append({"field": "points", "operator": ">=", "value": v})
                theirs.append({"property": "points", "operator": "GREATER_THAN_INCLUSIVE",
                               "value": str(v)})
            elif kind == 4:
                v = rng.randint(100, 1000)
                ours.append({"field": "xp", "operator": "<", "value": v})
                theirs.append({"property": "xp", "operator": "LESS_THAN", "value": str(v)})
            elif kind == 5:
                v = rng.randint(0, 100)
                ours.append({"field": "coins", "operator": "<=", "value": v})
                theirs.append({"property": "coins", "operator": "LESS_THAN_INCLUSIVE",
                               "value": str(v)})
            else:
                p = rng.choice(PLANS)
                ours.append({"field": "customFields.plan", "operator": "equals", "value": p})
                theirs.append({"property": "plan", "operator": "EQUAL", "value": p})
        out.append(({"kind": "dynamic", "include": ours, "exclude": []}, theirs))
    return out


def flagsmith_context(member: dict[str, Any]) -> dict[str, Any]:
    """The member as a flagsmith evaluation context (custom fields flattened into traits)."""
    traits = {k: v for k, v in member.items() if k not in ("custom_fields", "external_id")}
    traits.update(member["custom_fields"])
    return {"environment": {"key": "env", "name": "bench"},
            "identity": {"identifier": member["external_id"], "traits": traits}}


def flagsmith_segment(i: int, conditions: list[dict]) -> dict[str, Any]:
    """A flagsmith segment context with one ALL rule."""
    return {"key": str(i), "name": f"s{i}", "rules": [{"type": "ALL", "conditions": conditions}]}


def alternating(fns: tuple[Callable[[list[Any]], None], ...], work: list[Any], repeat: int,
                chunk: int = 50, seed: int = 1) -> list[float]:
    """Total seconds per function over `work`, medians of `repeat` rounds.

    The functions take turns on small chunks of the work, so a busy machine slows every side
    alike instead of whichever happened to run during a burst. The turn order is shuffled for
    every chunk, and each turn first runs its chunk once untimed: the turn after another
    engine's starts with cold caches, a fixed cost per turn that would otherwise weigh most on
    the fastest function (and, with a fixed order, always on the same one).
    """
    chunks = [work[i:i + chunk] for i in range(0, len(work), chunk)]
    order = list(range(len(fns)))
    shuffle = random.Random(seed).shuffle
    rounds = []
    for _ in range(repeat):
        totals = [0.0] * len(fns)
        for part in chunks:
            shuffle(order)
            for k in order:
                fn = fns[k]
                fn(part)
                started = time.perf_counter()
                fn(part)
                totals[k] += time.perf_counter() - started
        rounds.append(totals)
    return [statistics.median(r[k] for r in rounds) for k in range(len(fns))]


def run(argv: list[str]) -> dict:
    """Run both measures and return the benchmark JSON."""
    from flag_engine.engine import get_evaluation_result
    from flag_engine.segments.evaluator import is_context_in_segment

    parser = argparse.ArgumentParser(prog="python -m bench engine")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--evaluations", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(20240615)
    now = datetime.now(UTC)
    members = make_members(args.members, rng)
    pairs = make_segments(args.segments, rng)
    ours_defs = [p[0] for p in pairs]
    their_segs = [flagsmith_segment(i, p[1]) for i, p in enumerate(pairs)]
    contexts = [flagsmith_context(m) for m in members]

    # Same answers first: a benchmark of two engines that disagree measures nothing.
    checkers = [compile_segment(d, now=now) for d in ours_defs]
    for m, ctx in zip(members[:200], contexts[:200], strict=True):
        for d, seg, check in zip(ours_defs, their_segs, checkers, strict=True):
            got = evaluate_segment(d, m, now=now)
            theirs = is_context_in_segment(ctx, seg)
            assert got.matched == theirs == matches(d, m, now=now) == check(m)
            assert got.explanation["passed"] == theirs

    n = args.evaluations
    work = [(i % len(pairs), (i * 7) % len(members)) for i in range(n)]
    matchers = [compile_segment(d, now=now) for d in ours_defs]
    full_context_segments = {seg["key"]: seg for seg in their_segs}

    # Each measure reads its own copy of the definitions and members (flagsmith reads its own
    # contexts), so no measure finds its data in the caches because another one just read it.
    def own_copy() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return copy.deepcopy(ours_defs), copy.deepcopy(members)

    defs_1, members_1 = own_copy()
    defs_2, members_2 = own_copy()
    defs_3, members_3 = own_copy()
    defs_6, members_6 = own_copy()
    _, members_4 = own_copy()
    _, members_5 = own_copy()

    def ours_single(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            _ = evaluate_segment(defs_1[s], members_1[m], now=now).matched

    def ours_single_built(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            _ = evaluate_segment(defs_6[s], members_6[m], now=now).explanation

    def ours_single_explained(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            json.dumps(evaluate_segment(defs_2[s], members_2[m], now=now).explanation)

    def ours_single_matches(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            matches(defs_3[s], members_3[m], now=now)

    def ours_single_compiled(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            matchers[s](members_4[m])

    def theirs_single(chunk: list[tuple[int, int]]) -> None:
        for s, m in chunk:
            is_context_in_segment(contexts[m], their_segs[s])

    def ours_bulk(chunk: list[int]) -> None:
        for i in chunk:
            m = members_5[i]
            [f(m) for f in matchers]

    def theirs_bulk(chunk: list[int]) -> None:
        for i in chunk:
            get_evaluation_result({**contexts[i], "segments": full_context_segments})

    single = alternating((ours_single, ours_single_built, ours_single_explained,
                          ours_single_matches, ours_single_compiled, theirs_single),
                         work, args.repeat, chunk=500)
    bulk = alternating((ours_bulk, theirs_bulk), list(range(len(members))), args.repeat,
                       chunk=20)
    t_ours, t_ours_b, t_ours_x, t_ours_m, t_ours_c, t_theirs = single
    t_bulk, t_bulk_theirs = bulk
    ref = "flagsmith-flag-engine"
    single_ref = ref + " is_context_in_segment (a boolean, no explanation)"
    return result("engine", [
        measure("single-segment evaluations: evaluate_segment(...).matched "
                "(explanation not read, so not built)", "evals/s",
                n / t_ours, n / t_theirs, single_ref, TARGET, True),
        measure("single-segment evaluations: evaluate_segment(...) with its explanation "
                "built (read, not serialized)", "evals/s",
                n / t_ours_b, n / t_theirs, single_ref, TARGET, True),
        measure("single-segment evaluations: evaluate_segment(...) with its explanation "
                "built and serialized (json.dumps)", "evals/s",
                n / t_ours_x, n / t_theirs, single_ref, TARGET, True),
        measure("single-segment evaluations: matches(...) (boolean only)", "evals/s",
                n / t_ours_m, n / t_theirs, single_ref, TARGET, True),
        measure("single-segment evaluations: compile_segment matcher, made once per "
                "definition", "evals/s", n / t_ours_c, n / t_theirs, single_ref, TARGET, True),
        measure(f"members evaluated against {len(pairs)} segments (compile_segment matchers)",
                "members/s", len(members) / t_bulk, len(members) / t_bulk_theirs,
                ref + " get_evaluation_result", TARGET, True),
    ])
