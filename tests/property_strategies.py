"""What the hypothesis property tests share: derandomized settings and the value strategies
of degenerate input (finite floats, scales from micrometres to kilometres, NaN and infinities)."""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st


def derandomized(examples: int) -> settings:
    """``examples`` examples per test, the same ones on every run (and in CI), so a commit's
    result is its own; no example database is written."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None)


FINITE = {"allow_nan": False, "allow_infinity": False}
UNIT = st.floats(-1.0, 1.0, **FINITE)
SCALES = st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e6])
BAD = st.sampled_from([math.nan, math.inf, -math.inf])
