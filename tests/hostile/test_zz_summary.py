"""The corpus's totals (issue 14's table): runs after the corpus modules of this folder (file
order), when the whole folder is collected."""

from __future__ import annotations

import pytest

from hostile import OUTCOMES

MIN_CASES = 40


def test_corpus_totals():
    if len(OUTCOMES) < 10:  # only part of the corpus was selected (e.g. one module, -k)
        pytest.skip(f"only {len(OUTCOMES)} corpus cases ran in this session")
    cases = len(OUTCOMES)
    handled = sum(o["handled"] for o in OUTCOMES.values())
    tracebacks = sum(o["traceback"] for o in OUTCOMES.values())
    partial = sum(o["partial"] for o in OUTCOMES.values())
    executed = sum(o["executed"] for o in OUTCOMES.values())
    print(f"\ncorpus: {cases} cases, {handled} handled, {tracebacks} tracebacks, "
          f"{partial} partial/overwritten outputs, {executed} commands executed")  # fmt: skip
    assert cases >= MIN_CASES
    assert (handled, tracebacks, partial, executed) == (cases, 0, 0, 0), {
        case: outcome for case, outcome in OUTCOMES.items()
        if not outcome["handled"] or outcome["traceback"] or outcome["partial"]
        or outcome["executed"]
    }  # fmt: skip
