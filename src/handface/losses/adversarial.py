"""GAN losses of the parameter discriminators (DICE's L_adv).

The "standard" non-saturating GAN losses on logits: the discriminator learns to tell
parameters drawn from the prior ("real") from regressed ones ("fake"); the regressor is
rewarded when its parameters pass as real. handface has no Anny parameter dataset, so the
real samples come from the synthetic generator's own pose/expression/shape priors.
"""

from __future__ import annotations

import torch.nn.functional as nnf
from jaxtyping import Float
from torch import Tensor


def discriminator_loss(
    real_logits: Float[Tensor, " B"], fake_logits: Float[Tensor, " B"]
) -> Float[Tensor, ""]:
    """``BCE(D(real), 1) + BCE(D(fake), 0)`` (pass ``fake`` detached from the regressor).

    Example:
        >>> import torch
        >>> round(float(discriminator_loss(torch.tensor([0.0]), torch.tensor([0.0]))), 4)
        1.3863
    """
    real = nnf.binary_cross_entropy_with_logits(
        real_logits, real_logits.new_ones(()).expand_as(real_logits)
    )
    fake = nnf.binary_cross_entropy_with_logits(
        fake_logits, fake_logits.new_zeros(()).expand_as(fake_logits)
    )
    return real + fake


def generator_loss(fake_logits: Float[Tensor, " B"]) -> Float[Tensor, ""]:
    """Non-saturating ``BCE(D(fake), 1)`` for the regressor.

    Example:
        >>> import torch
        >>> round(float(generator_loss(torch.tensor([0.0]))), 4)
        0.6931
    """
    return nnf.binary_cross_entropy_with_logits(
        fake_logits, fake_logits.new_ones(()).expand_as(fake_logits)
    )
