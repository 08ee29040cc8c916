"""Wall-clock cost of limited markdown on hostile inputs (openers without closers), n and 2n.

The test suite counts the work (tests/gateway/test_markdown_work.py); this prints the seconds, as
key=value lines: for each hostile unit the milliseconds at 10,000 and 20,000 characters and their
ratio (about 2 when the scan is linear, about 4 when quadratic), and the worst of each.

python -m bench.markdown [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from gateway.messages import limited_markdown

UNITS = {"strong": "**a ", "em_underscore": "_a ", "strike": "~~a ", "em": "*a ", "bracket": "[",
         "code": "`a ``b ", "mixed": "*_~~[`", "backslash": "\\", "image": "![a](", "autolink": "<a:"}
SIZES = (10_000, 20_000)


def milliseconds(text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        limited_markdown.__wrapped__(text)  # uncached: the work itself
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    worst_ms, worst_ratio = 0.0, 0.0
    for name, unit in UNITS.items():
        small, large = (milliseconds((unit * size)[:size], args.repeats) for size in SIZES)
        ratio = large / small if small else 0.0
        worst_ms, worst_ratio = max(worst_ms, large), max(worst_ratio, ratio)
        print(f"markdown_{name}_ms_{SIZES[0]}={small:.2f}")
        print(f"markdown_{name}_ms_{SIZES[1]}={large:.2f}")
        print(f"markdown_{name}_ratio_2n={ratio:.2f}")
    print(f"markdown_worst_ms_{SIZES[1]}={worst_ms:.2f}")
    print(f"markdown_worst_ratio_2n={worst_ratio:.2f}")


if __name__ == "__main__":
    main()
