"""InteractionNet: tokens -> per-token deformation and contact (DICE §3.2).

The same tokens as MeshNet (image feature ⊕ template xyz) go through a linear layer and
transformer encoders (the paper: 2051 -> 512, then two encoders); the last stage gives four
values per token: a deformation (3, metres after ``deformation_scale``) and a contact logit.
Contact and deformation share the encoder because contact causes deformation. DICE reads the
deformation of the face's coarse vertices and the contact of both parts' coarse vertices;
both are then upsampled to the full meshes.

Example:
    >>> from handface.dice.config import get_config
    >>> config = get_config("dice-small").replace(num_layers=1)
    >>> deformation, contact = InteractionNet(config, 10)(torch.zeros(2, 10, 259))
    >>> deformation.shape, contact.shape
    (torch.Size([2, 10, 3]), torch.Size([2, 10]))
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.config import DiceConfig
from handface.dice.meshnet import transformer_stages


class InteractionNet(nn.Module):
    """Transformer stages of ``config.interaction_*`` widths -> (deformation, contact logit)."""

    def __init__(self, config: DiceConfig, num_tokens: int) -> None:
        super().__init__()
        self.stages = transformer_stages(
            config.interaction_in,
            config.interaction_hidden,
            config.interaction_out,
            num_tokens,
            config,
        )
        self.deformation_scale = config.deformation_scale
        last = self.stages[-1].output
        with torch.no_grad():  # start near "no deformation, no contact"
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias[3] = -2.0

    def forward(
        self, tokens: Float[Tensor, "B N C"]
    ) -> tuple[Float[Tensor, "B N 3"], Float[Tensor, "B N"]]:
        out = self.stages(tokens)
        return out[..., :3] * self.deformation_scale, out[..., 3]
