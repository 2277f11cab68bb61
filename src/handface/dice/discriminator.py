"""Parameter discriminators: the adversarial priors on regressed face and hand parameters.

DICE trains a face and a hand discriminator alternately with the network: they tell
parameters regressed from images from "real" ones drawn from parameter datasets (the GAN
losses are in :mod:`handface.losses.adversarial`). Each is a small MLP with leaky ReLUs on
the pose-like parameters of its part — the global rotation and translation are left out
(they depend on the camera, not on what faces and hands look like).

Example:
    >>> disc = ParamDiscriminator(in_dim=26, hidden=(64, 64))
    >>> disc(torch.zeros(3, 26)).shape
    torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.models.base import HandModel, HandParams, HeadModel, HeadParams


class ParamDiscriminator(nn.Module):
    """MLP ``in_dim -> hidden... -> 1`` (LeakyReLU 0.2): one realism logit per sample."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, params: Float[Tensor, "B D"]) -> Float[Tensor, " B"]:
        return self.net(params)[..., 0]


def head_param_vector(params: HeadParams) -> Float[Tensor, "B D"]:
    """``[expression, shape, jaw, neck]`` of a batch of head parameters (no jaw/neck: 0)."""
    if params.expression is None or params.shape is None:
        raise ValueError("head parameters need an expression and a shape")
    batch = params.batch_size
    zero = params.expression.new_zeros(1, 3)
    jaw = zero if params.jaw is None else params.jaw
    neck = zero if params.neck is None else params.neck
    parts = (params.expression, params.shape, jaw, neck)
    return torch.cat([p.expand(batch, -1) for p in parts], dim=-1)


def hand_param_vector(params: HandParams) -> Float[Tensor, "B D"]:
    """``[articulation, shape]`` of a batch of hand parameters."""
    if params.articulation is None or params.shape is None:
        raise ValueError("hand parameters need an articulation and a shape")
    batch = params.batch_size
    parts = (params.articulation, params.shape)
    return torch.cat([p.expand(batch, -1) for p in parts], dim=-1)


def head_param_dim(model: HeadModel) -> int:
    """Width of :func:`head_param_vector` for a head model."""
    return len(model.expression_labels) + len(model.shape_labels) + 6


def hand_param_dim(model: HandModel) -> int:
    """Width of :func:`hand_param_vector` for a hand model (Anny: 20 + 6)."""
    return model.num_articulation + len(model.shape_labels)


class DiceDiscriminators(nn.Module):
    """The face and the hand discriminator of one pair of models."""

    def __init__(self, head_model: HeadModel, hand_model: HandModel, hidden: Sequence[int]) -> None:
        super().__init__()
        self.face = ParamDiscriminator(head_param_dim(head_model), hidden)
        self.hand = ParamDiscriminator(hand_param_dim(hand_model), hidden)

    def forward(
        self, head: HeadParams, hand: HandParams
    ) -> tuple[Float[Tensor, " B"], Float[Tensor, " B"]]:
        """Realism logits of the face and of the hand parameters."""
        return self.face(head_param_vector(head)), self.hand(hand_param_vector(hand))
