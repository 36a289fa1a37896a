"""The fault and scale-out tests run again and again while other processes keep both cores
busy: a test that depends on the machine's speed fails here sooner or later. `make flakes`
(FLAKE_ROUNDS rounds, 10 by default) ends with a table of runs and failures per test.

    python -m tests.flakes --rounds 10 [pytest arguments...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

FILES = [
    "tests/test_faults.py",
    "tests/test_worker_kill.py",
    "tests/test_poison_messages.py",
    "tests/test_scale_out.py",
]


def spin() -> None:
    """One core kept busy until terminated."""
    while True:
        pass


def outcomes(junit: Path) -> dict[str, str]:
    """Each test of a JUnit XML report and how it ended: passed, failed or skipped."""
    results = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        ended = {child.tag for child in case}
        results[name] = (
            "failed"
            if ended & {"failure", "error"}
            else "skipped"
            if "skipped" in ended
            else "passed"
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy processes")
    options, pytest_arguments = parser.parse_known_args()

    runs: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    load = [multiprocessing.Process(target=spin, daemon=True) for _ in range(options.load)]
    for process in load:
        process.start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            for round_number in range(1, options.rounds + 1):
                junit = Path(directory) / f"round-{round_number}.xml"
                command = [sys.executable, "-m", "pytest", *FILES, f"--junitxml={junit}"]
                subprocess.run([*command, "-q", *pytest_arguments], check=False)
                for name, outcome in outcomes(junit).items():
                    if outcome != "skipped":
                        runs[name] += 1
                        failures[name] += outcome == "failed"
                print(f"round {round_number}: {sum(failures.values())} failures so far")
    finally:
        for process in load:
            process.terminate()

    width = max(map(len, runs), default=4)
    print(f"\n{'test':<{width}}  runs  failures")
    for name in sorted(runs):
        print(f"{name:<{width}}  {runs[name]:>4}  {failures[name]:>8}")
    print(f"{'all':<{width}}  {sum(runs.values()):>4}  {sum(failures.values()):>8}")
    return 1 if failures.total() else 0


if __name__ == "__main__":
    sys.exit(main())
