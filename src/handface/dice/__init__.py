"""DICE: single-image hand-face interaction and deformation (arXiv 2406.17988).

>>> from handface.dice import DiceNet, get_config, predict_both_hands
>>> from handface.models import AnnyHeadModel, AnnyHandModel
>>> net = DiceNet(get_config("dice-small"), AnnyHeadModel(), AnnyHandModel("right"))

The paper's parts, by module (METHOD.md §1):

==============================  =============================================================
paper                           module
==============================  =============================================================
HRNet-W64 backbone, 7x7 grid    :mod:`~handface.dice.backbone` (and a small CNN for CPUs)
tokens, masking, MeshNet        :mod:`~handface.dice.meshnet` (:class:`TokenBuilder`, MeshNet)
mesh down/up-sampling           :mod:`handface.models.mesh_sampling`, geometry.mesh_sampling
InteractionNet                  :mod:`~handface.dice.interaction_net`
IKNet (face, hand)              :mod:`~handface.dice.iknet`
weak-perspective camera         :mod:`~handface.dice.model` (``CameraHead``),
                                :mod:`~handface.dice.projection` (through the real camera)
discriminators                  :mod:`~handface.dice.discriminator`
the whole network               :mod:`~handface.dice.model` (:class:`DiceNet` -> DiceOutput)
L_mesh, L_interaction, L_depth,
L_adv and their weights         :mod:`~handface.dice.objective` (terms in handface.losses)
training (AdamW, DDP)           :mod:`~handface.dice.train`, :mod:`~handface.dice.trainer`
crops and training items        :mod:`~handface.dice.crops`, :mod:`~handface.dice.dataset`
in-the-wild weak supervision    :mod:`~handface.dice.wild`
inference -> Capture            :mod:`~handface.dice.predictor`
==============================  =============================================================

Beyond the paper: both hands from one hand branch (:mod:`~handface.dice.mirror`: the left hand
is the right hand of the mirrored crop), batch norm over the global batch of a CPU
distributed run (:mod:`~handface.dice.sync_norm`), multiply-add counts
(:mod:`~handface.dice.flops`).
"""

from handface.dice.config import PRESETS, DiceConfig, get_config
from handface.dice.discriminator import DiceDiscriminators
from handface.dice.flops import FlopCount, count_flops
from handface.dice.mirror import DicePrediction, predict_both_hands
from handface.dice.model import DiceNet, DiceOutput, weak_perspective

__all__ = [
    "PRESETS",
    "DiceConfig",
    "DiceDiscriminators",
    "DiceNet",
    "DiceOutput",
    "DicePrediction",
    "FlopCount",
    "count_flops",
    "get_config",
    "predict_both_hands",
    "weak_perspective",
]
