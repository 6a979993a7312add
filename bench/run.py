"""The one benchmark command: runs every benchmark module present, in a fixed order.

``make bench`` runs ``.venv/bin/python bench/run.py``. Each benchmark is a module of this folder
with a ``main()`` that parses its own command line, prints its table and writes
``bench/results/<name>.json``; a module not present (yet) is skipped with a note, so a
benchmark can land on its own.

The exit status is non-zero when a benchmark crashes, never because a target is missed:
targets are reported in each benchmark's output and JSON, where a person reads them; a crash
means the numbers are missing, which CI must notice.

Run: ``.venv/bin/python bench/run.py [--only engine,ledger,e2e]``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import traceback
from pathlib import Path

__all__ = ["BENCHMARKS", "main"]

REPO = Path(__file__).resolve().parents[1]

BENCHMARKS = ("engine", "signing", "ledger", "tls", "verify", "e2e", "cpns_day")
"""Every benchmark, in the order they run: cheapest and most self-contained first."""


def _run_one(name: str) -> bool:
    """Run ``bench/<name>.py``'s ``main()`` with an empty command line; False if it crashed.

    ``sys.argv`` is replaced because the benchmarks parse it themselves and must not see
    this command's ``--only``.
    """
    module_name = f"bench.{name}"
    if importlib.util.find_spec(module_name) is None:
        print(f"== {name}: skipped, bench/{name}.py is not present", flush=True)
        return True
    print(f"== {name}", flush=True)
    saved_argv = sys.argv
    sys.argv = [str(REPO / "bench" / f"{name}.py")]
    start = time.monotonic()
    try:
        importlib.import_module(module_name).main()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            print(f"== {name}: FAILED (exit {exc.code})", flush=True)
            return False
    except Exception:
        traceback.print_exc()
        print(f"== {name}: FAILED", flush=True)
        return False
    finally:
        sys.argv = saved_argv
    print(f"== {name}: done in {time.monotonic() - start:.0f} s", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all)",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    # Run as a script, this file's folder is on sys.path, not the repository root that makes
    # ``bench`` importable as a package.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    failed = [name for name in BENCHMARKS if name in chosen and not _run_one(name)]
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
