"""``handface bench NAME``: speed and quality figures, printed as JSON.

Each benchmark is a function returning a flat dict of numbers; where a reference exists it is
measured in the same run and reported as a ratio. Benchmarks never assert: they measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from handface.models.scene import ContactScene, hand_on_cheek_scene


def contact_scene() -> ContactScene:
    """The standard bench/demo scene: the Anny head facing the camera, a right hand on its cheek."""
    return hand_on_cheek_scene()


def median_ms(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return times[len(times) // 2]


# --- benchmarks (each: () -> dict[str, float]) -------------------------------------------------

BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {}


def run(name: str) -> dict[str, float]:
    """Run the benchmark ``name`` and return its figures."""
    from handface.errors import InputError

    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}")
    return BENCHMARKS[name]()
