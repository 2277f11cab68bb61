"""Dataset readers; every reader returns :class:`InteractionSample` items.

- :class:`SynthDataset`: the synthetic format written by ``handface synth``.
- :class:`DecafDataset`: the Decaf layout (the user supplies Decaf and FLAME/MANO).
"""

from handface.data.decaf import DECAF_CAMERAS, DECAF_EVAL_CAMERA, DECAF_SUBJECTS, DecafDataset
from handface.data.sample import HandSample, InteractionSample, deformed_face
from handface.data.synth import SynthDataset, load_labels, read_meta

__all__ = [
    "DECAF_CAMERAS",
    "DECAF_EVAL_CAMERA",
    "DECAF_SUBJECTS",
    "DecafDataset",
    "HandSample",
    "InteractionSample",
    "SynthDataset",
    "deformed_face",
    "load_labels",
    "read_meta",
]
