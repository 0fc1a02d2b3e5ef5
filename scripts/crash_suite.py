"""Full crash suite: `python -m scripts.crash_suite [--trials 20] [--seed 0]` (kill -9 at random points).

Prints one line per trial and a summary; exits 1 if any trial lost or corrupted anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from genfx.shot import load_shot
from tests.crash_harness import run_trial

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="first trial seed; trial i uses seed + i")
    parser.add_argument("--keep", action="store_true", help="keep the trial data dirs")
    args = parser.parse_args()
    shot = load_shot(ROOT / "examples" / "shots" / "building_orbit.json")
    workdir = Path(tempfile.mkdtemp(prefix="genfx-crash-"))
    failures = 0
    for i in range(args.trials):
        r = run_trial(args.seed + i, workdir, shot)
        failures += not r.ok
        print(
            f"trial {r.seed:3d} {r.kind:<16} killed during {'+'.join(r.in_flight):<18} -> {r.state:<20} "
            f"{r.frames} frames {r.seconds:5.1f}s {'OK' if r.ok else 'LOST: ' + '; '.join(r.problems)}",
            flush=True,
        )
    print(f"{args.trials - failures} passed, {failures} failed")
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
