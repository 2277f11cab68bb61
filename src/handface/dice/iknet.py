"""IKNet: coarse vertices -> parametric-model parameters (DICE §3.2).

An MLP of ``iknet_blocks`` blocks (Linear, BatchNorm1d, ReLU; width ``iknet_hidden``) with two
skips — block 1's output is added to block 3's input and block 3's output to the final
linear's input — reads the flattened, centred vertices of one mid-level coarse mesh and
returns the parameters of the part's model:

* face (:class:`FaceIKNet`): expression (``len(head_model.expression_labels)``), shape
  (``len(head_model.shape_labels)``), jaw and neck axis-angles, and the global rotation;
* hand (:class:`HandIKNet`): the model's pose latent (``num_articulation`` values; Anny: the
  20 compact joint-limited degrees of freedom, any real value), shape, and the global
  rotation.

Bounded parameters (the models' ``expression_bounds`` and ``shape_bounds``; Anny: ``[0, 1]``)
pass a scaled sigmoid; unbounded ones (FLAME / MANO PCA coefficients) are linear. Rotations use the
continuous 6D representation (Zhou et al. 2019, ``roma.special_gramschmidt``) as a correction
of the part's template orientation, so a zero output is the template pose. The translation is
not regressed: :func:`centroid_translation` solves it in closed form.

Example:
    >>> from handface.dice.config import get_config
    >>> config = get_config("dice-small")
    >>> net = FaceIKNet(50, num_expression=52, num_shape=9, config=config).eval()
    >>> out = net(torch.randn(2, 50, 3))
    >>> out.expression.shape, out.rotation.shape
    (torch.Size([2, 52]), torch.Size([2, 3, 3]))
    >>> bool(((out.expression >= 0) & (out.expression <= 1)).all())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.config import DiceConfig

IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
"""The 6D code (two columns of a 3 x 2 matrix, row-major) of the identity rotation."""
NEUTRAL_FRACTION = 0.02
"""Initial value of bounded expressions, as a fraction of their range (a sigmoid cannot start
at exactly 0; Anny's facial actions start at 0.02, visually neutral)."""


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True))


class IKMLP(nn.Module):
    """Blocks of Linear + BatchNorm1d + ReLU with the skips 1 -> 3 (input) and 3 -> final."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 1024, blocks: int = 5) -> None:
        super().__init__()
        if blocks < 3:
            raise ValueError("IKMLP needs at least 3 blocks")
        self.blocks = nn.ModuleList(
            [_block(in_dim, hidden)] + [_block(hidden, hidden) for _ in range(blocks - 1)]
        )
        self.final = nn.Linear(hidden, out_dim)
        nn.init.normal_(self.final.weight, std=1e-3)
        nn.init.zeros_(self.final.bias)

    def forward(self, x: Float[Tensor, "B Cin"]) -> Float[Tensor, "B Cout"]:
        h1 = self.blocks[0](x)
        h = self.blocks[1](h1)
        h3 = self.blocks[2](h + h1)
        h = h3
        for block in self.blocks[3:]:
            h = block(h)
        return self.final(h + h3)


def _centred(vertices: Tensor) -> Tensor:
    return (vertices - vertices.mean(dim=1, keepdim=True)).flatten(1)


@dataclass
class FaceIKOutput:
    """Face parameters regressed by :class:`FaceIKNet` (batch first)."""

    expression: Float[Tensor, "B E"]
    shape: Float[Tensor, "B S"]
    jaw: Float[Tensor, "B 3"]
    neck: Float[Tensor, "B 3"]
    rotation: Float[Tensor, "B 3 3"]
    """Head canonical frame -> the network's frame."""


@dataclass
class HandIKOutput:
    """Hand parameters regressed by :class:`HandIKNet` (batch first)."""

    pose: Float[Tensor, "B A"]
    """The hand model's pose latent (``HandParams.articulation``; Anny: the 20 compact
    joint-limited degrees of freedom)."""
    shape: Float[Tensor, "B S"]
    rotation: Float[Tensor, "B 3 3"]
    """Hand canonical frame -> the network's frame."""


def _bounded(values: Tensor, bounds: tuple[float, float] | None) -> Tensor:
    if bounds is None:
        return values
    low, high = bounds
    return low + (high - low) * torch.sigmoid(values)


def _raw(value: float, bounds: tuple[float, float] | None) -> float:
    """The output that :func:`_bounded` maps to ``value``."""
    if bounds is None:
        return value
    low, high = bounds
    fraction = min(max((value - low) / (high - low), 1e-3), 1.0 - 1e-3)
    return math.log(fraction / (1.0 - fraction))


class FaceIKNet(nn.Module):
    """Centred face vertices of one coarse level -> :class:`FaceIKOutput`.

    Expressions and shapes within ``expression_bounds`` / ``shape_bounds`` (the head model's,
    ``None``: unbounded) pass a scaled sigmoid. At initialisation the output is the neutral
    expression (:data:`NEUTRAL_FRACTION` of the range when bounded), ``neutral_shape``, a
    closed jaw, a straight neck and the template rotation.

    The neck stays straight (the training heads turn as a whole: synthetic data and Decaf), and
    the jaw stays closed unless ``jaw_pose`` (a head model whose expressions cannot open the
    mouth, FLAME; Anny opens it with its ``jawOpen`` expression).
    """

    def __init__(
        self,
        num_vertices: int,
        num_expression: int,
        num_shape: int,
        config: DiceConfig,
        expression_bounds: tuple[float, float] | None = (0.0, 1.0),
        shape_bounds: tuple[float, float] | None = (0.0, 1.0),
        neutral_shape: float = 0.5,
        base_rotation: Float[Tensor, "3 3"] | None = None,
        jaw_pose: bool = False,
    ) -> None:
        super().__init__()
        self.jaw_pose = jaw_pose
        self.sizes = (num_expression, num_shape, 3, 3, 6)
        self.mlp = IKMLP(
            num_vertices * 3, sum(self.sizes), config.iknet_hidden, config.iknet_blocks
        )
        self.expression_bounds = expression_bounds
        self.shape_bounds = shape_bounds
        with torch.no_grad():
            bias = torch.zeros(sum(self.sizes))
            if expression_bounds is not None:
                low, high = expression_bounds
                bias[:num_expression] = _raw(
                    low + NEUTRAL_FRACTION * (high - low), expression_bounds
                )
            bias[num_expression : num_expression + num_shape] = _raw(neutral_shape, shape_bounds)
            bias[-6:] = torch.tensor(IDENTITY_6D)
            self.mlp.final.bias.copy_(bias)
        base = torch.eye(3) if base_rotation is None else base_rotation.float()
        self.register_buffer("base_rotation", base, persistent=False)

    def forward(self, vertices: Float[Tensor, "B V 3"]) -> FaceIKOutput:
        out = self.mlp(_centred(vertices))
        expression, shape, jaw, neck, six = out.split(self.sizes, dim=-1)
        expression = _bounded(expression, self.expression_bounds)
        shape = _bounded(shape, self.shape_bounds)
        correction = roma.special_gramschmidt(six.reshape(-1, 3, 2))
        # Degrees of freedom no training head uses are held at rest: left free, a rotation
        # vector drifts to any angle (the shipped network's reached 30-150 rad and folded the
        # head), since nothing but the vertex loss through a periodic map constrains it.
        neck = torch.zeros_like(neck)
        if not self.jaw_pose:
            jaw = torch.zeros_like(jaw)
        return FaceIKOutput(expression, shape, jaw, neck, correction @ self.base_rotation.to(out))


class HandIKNet(nn.Module):
    """Centred hand vertices of one level -> :class:`HandIKOutput` (pose latent: unbounded,
    0 at initialisation; shape as for :class:`FaceIKNet`)."""

    def __init__(
        self,
        num_vertices: int,
        pose_dim: int,
        num_shape: int,
        config: DiceConfig,
        shape_bounds: tuple[float, float] | None = (0.0, 1.0),
        neutral_shape: float = 0.5,
        base_rotation: Float[Tensor, "3 3"] | None = None,
    ) -> None:
        super().__init__()
        self.sizes = (pose_dim, num_shape, 6)
        self.mlp = IKMLP(
            num_vertices * 3, sum(self.sizes), config.iknet_hidden, config.iknet_blocks
        )
        self.shape_bounds = shape_bounds
        with torch.no_grad():
            bias = torch.zeros(sum(self.sizes))
            bias[pose_dim : pose_dim + num_shape] = _raw(neutral_shape, shape_bounds)
            bias[-6:] = torch.tensor(IDENTITY_6D)
            self.mlp.final.bias.copy_(bias)
        base = torch.eye(3) if base_rotation is None else base_rotation.float()
        self.register_buffer("base_rotation", base, persistent=False)

    def forward(self, vertices: Float[Tensor, "B V 3"]) -> HandIKOutput:
        out = self.mlp(_centred(vertices))
        pose, shape, six = out.split(self.sizes, dim=-1)
        shape = _bounded(shape, self.shape_bounds)
        correction = roma.special_gramschmidt(six.reshape(-1, 3, 2))
        return HandIKOutput(pose, shape, correction @ self.base_rotation.to(out))


def centroid_translation(
    posed: Float[Tensor, "B V 3"], target: Float[Tensor, "B V 3"]
) -> Float[Tensor, "B 3"]:
    """The translation that moves the centroid of ``posed`` onto that of ``target``.

    The least-squares translation between corresponding point sets; differentiable in both.

    Example:
        >>> centroid_translation(torch.zeros(1, 4, 3), torch.ones(1, 4, 3))
        tensor([[1., 1., 1.]])
    """
    return target.mean(dim=1) - posed.mean(dim=1)
