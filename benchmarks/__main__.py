"""`python -m benchmarks [NAME ...]`: run the named benchmarks (default: all), print figures.

Each benchmark module exposes `main() -> int` (0 when its targets hold). The exit code is the
number of benchmarks that missed a target, so `make bench` fails visibly.
"""

import importlib
import sys
import time

BENCHMARKS = {
    "catalog": "benchmarks.catalog_bench",
    "orders": "benchmarks.orders_bench",
    "finance": "benchmarks.finance_bench",
    "scale": "benchmarks.scale_bench",
    "soak": "benchmarks.soak",
}
DEFAULT = ("catalog", "orders", "finance", "scale")


def main(argv: list[str]) -> int:
    names = argv or list(DEFAULT)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    missed = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(BENCHMARKS[name])
        status = module.main()
        print(
            f"--- {name}: {'targets met' if status == 0 else 'TARGET MISSED'} "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        missed += status != 0
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
