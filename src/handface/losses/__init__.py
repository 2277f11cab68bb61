"""Named, pure loss terms shared by fitting, DICE, tracking and the avatar.

Every term is a small function of tensors (no module state, no weights inside): callers
multiply by the weights of their own config, whose defaults are the published ones
(METHOD.md). Distances are in metres, 2D residuals in pixels unless a ``scale`` says otherwise.

- :mod:`~handface.losses.robust`: robust kernels (Cauchy, pseudo-Huber) of squared residuals.
- :mod:`~handface.losses.reprojection`: 2D keypoint terms (DICE's L1, fitting's robust form).
- :mod:`~handface.losses.mesh`: masked L1 of vertices, keypoints and parameters (DICE L_mesh).
- :mod:`~handface.losses.depth`: depth order (the avatar paper's ranking form and occlusion
  cross-entropy, fitting's hinge), DICE's scale-invariant log depth.
- :mod:`~handface.losses.contact`: contact regularization (pull onto the skin), collision,
  DICE's touch, contact BCE and collision terms, the avatar's contact loss.
- :mod:`~handface.losses.deformation`: DICE's stiffness-weighted deformation loss, the
  avatar's displacement regularizer.
- :mod:`~handface.losses.adversarial`: GAN losses of the parameter discriminators.
- :mod:`~handface.losses.temporal`: smoothness over frames (velocity, acceleration) for the
  tracker and the avatar.
"""

from handface.losses.adversarial import discriminator_loss, generator_loss
from handface.losses.contact import (
    avatar_contact_loss,
    clearance_hinge,
    collision_hinge,
    contact_bce,
    contact_pull,
    penetration_chamfer,
    touch_chamfer,
)
from handface.losses.deformation import (
    deformation_loss,
    displacement_regularizer,
    stiffness_weights,
)
from handface.losses.depth import (
    depth_behind_hinge,
    depth_order_ranking,
    occlusion_cross_entropy,
    scale_invariant_log_depth,
)
from handface.losses.mesh import masked_l1
from handface.losses.reprojection import reprojection_l1, robust_reprojection
from handface.losses.robust import cauchy, pseudo_huber
from handface.losses.temporal import acceleration_penalty, velocity_penalty

__all__ = [
    "acceleration_penalty",
    "avatar_contact_loss",
    "cauchy",
    "clearance_hinge",
    "collision_hinge",
    "contact_bce",
    "contact_pull",
    "deformation_loss",
    "depth_behind_hinge",
    "depth_order_ranking",
    "discriminator_loss",
    "displacement_regularizer",
    "generator_loss",
    "masked_l1",
    "occlusion_cross_entropy",
    "penetration_chamfer",
    "pseudo_huber",
    "reprojection_l1",
    "robust_reprojection",
    "scale_invariant_log_depth",
    "stiffness_weights",
    "touch_chamfer",
    "velocity_penalty",
]
