"""MeshNet: image feature tokens -> 3D keypoints and coarse vertices (DICE §3.2, METRO-style).

:class:`TokenBuilder` turns the backbone's 49 feature tokens into one token per keypoint and
coarse vertex: a linear map over the token axis (49 -> N), then each token's template position
(the mean-pose meshes in the network's frame, times ``template_scale``) is appended. In
training a random ``mask_ratio`` of the tokens have their image feature replaced by a learned
mask token (their template position stays), so the network learns to infer vertices from
their neighbours (METRO's masked vertex modeling).

:class:`MeshNet` runs three transformer encoder stages of shrinking width on those tokens and
outputs an xyz per token: the template position plus a learned offset.

Example:
    >>> from handface.dice.config import get_config
    >>> config = get_config("dice-small").replace(num_layers=1)
    >>> template = torch.zeros(10, 3)
    >>> tokens = TokenBuilder(config, 10)(torch.zeros(2, 49, 256), template)
    >>> tokens.shape
    torch.Size([2, 10, 259])
    >>> MeshNet(config, 10)(tokens, template).shape
    torch.Size([2, 10, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.config import DiceConfig


class TransformerStage(nn.Module):
    """Linear ``in -> hidden``, (+ learned token embedding), encoder layers, linear ``-> out``."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        num_tokens: int,
        config: DiceConfig,
    ) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.position = (
            nn.Parameter(torch.randn(1, num_tokens, hidden) * 0.02)
            if config.position_embedding
            else None
        )
        layer = nn.TransformerEncoderLayer(
            d_model=hidden,
            nhead=config.num_heads,
            dim_feedforward=int(round(hidden * config.ffn_ratio)),
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.output = nn.Linear(hidden, out_dim)

    def forward(self, x: Float[Tensor, "B N Cin"]) -> Float[Tensor, "B N Cout"]:
        x = self.input(x)
        if self.position is not None:
            x = x + self.position
        return self.output(self.encoder(x))


def transformer_stages(
    ins: Sequence[int],
    hidden: Sequence[int],
    outs: Sequence[int],
    num_tokens: int,
    config: DiceConfig,
) -> nn.Sequential:
    """Stages in sequence, each as :class:`TransformerStage`."""
    return nn.Sequential(
        *(
            TransformerStage(i, h, o, num_tokens, config)
            for i, h, o in zip(ins, hidden, outs, strict=True)
        )
    )


class TokenBuilder(nn.Module):
    """49 image feature tokens -> N tokens of ``feature ⊕ template xyz`` (masked in training)."""

    def __init__(self, config: DiceConfig, num_tokens: int, grid_tokens: int = 49) -> None:
        super().__init__()
        self.upsample = nn.Linear(grid_tokens, num_tokens)
        self.mask_token = nn.Parameter(torch.zeros(config.feature_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.mask_ratio = config.mask_ratio
        self.template_scale = config.template_scale

    def forward(
        self, features: Float[Tensor, "B 49 C"], template: Float[Tensor, "N 3"]
    ) -> Float[Tensor, "B N C+3"]:
        tokens = self.upsample(features.transpose(1, 2)).transpose(1, 2)  # (B, N, C)
        if self.training and self.mask_ratio > 0:
            masked = torch.rand(tokens.shape[:2], device=tokens.device) < self.mask_ratio
            tokens = torch.where(masked[..., None], self.mask_token.to(tokens.dtype), tokens)
        position = (template * self.template_scale).to(tokens)
        return torch.cat([tokens, position.expand(tokens.shape[0], -1, -1)], dim=-1)


class MeshNet(nn.Module):
    """Three (``len(config.meshnet_hidden)``) transformer stages -> one xyz per token.

    The output is ``template + offset / template_scale`` (metres, the network's frame), so an
    untrained network already returns the template.
    """

    def __init__(self, config: DiceConfig, num_tokens: int) -> None:
        super().__init__()
        self.stages = transformer_stages(
            config.meshnet_in, config.meshnet_hidden, config.meshnet_out, num_tokens, config
        )
        self.template_scale = config.template_scale
        last = self.stages[-1].output
        with torch.no_grad():  # start close to the template (offsets of millimetres)
            last.weight.mul_(0.1)
            last.bias.zero_()

    def forward(
        self, tokens: Float[Tensor, "B N C"], template: Float[Tensor, "N 3"]
    ) -> Float[Tensor, "B N 3"]:
        return template.to(tokens) + self.stages(tokens) / self.template_scale
