"""Synthetic hand-face interaction data: scene sampling, physics, rendering, dataset writing.

>>> from handface.synth import generate
>>> generate("outputs/synth", num=8, seed=0)  # doctest: +SKIP
"""

from handface.synth.generate import generate

__all__ = ["generate"]
