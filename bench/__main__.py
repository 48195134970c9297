"""Run one benchmark by name: `python -m bench NAME` (engine, count, upload, explain, api, rules,
concurrency, activities, replay; see bench/*.py)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys

import bench


def available() -> list[str]:
    """Names of the benchmark modules in this package."""
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    """Dispatch to bench.<name>.run(args) and print its JSON result."""
    if not argv or argv[0] not in available():
        print(f"usage: python -m bench NAME [args]; NAME is one of: {', '.join(available())}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{argv[0]}")
    result = module.run(argv[1:])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
