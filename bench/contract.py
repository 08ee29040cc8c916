"""Milliseconds per exchange for the contract checker after warm-up (tests/contract).

The test suite counts what made it fast (no route search repeats once an operation was seen:
tests/contract/test_harness.py); this prints the time, as key=value lines.

python -m bench.contract [--rounds 20]
"""

from __future__ import annotations

import argparse
import importlib
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    # The harness lives with the tests (imported by name: it is test code, not part of the typed tree).
    checker = importlib.import_module("tests.contract.checker").default_checker()
    exchanges = list(importlib.import_module("tests.contract.test_harness").VALID.values())
    checker.check(exchanges)  # warm-up: every operation seen once
    started = time.perf_counter()
    for _ in range(args.rounds):
        checker.check(exchanges)
    per_exchange_ms = (time.perf_counter() - started) * 1000 / (args.rounds * len(exchanges))
    print(f"contract_exchanges={len(exchanges)}")
    print(f"contract_ms_per_exchange={per_exchange_ms:.3f}")


if __name__ == "__main__":
    main()
