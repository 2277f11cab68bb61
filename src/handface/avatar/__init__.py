"""The head avatar with hand-contact deformation (METHOD.md §4): so far its deformation basis
and its appearance (texture and lighting fitted to video)."""

from handface.avatar.appearance import (
    Appearance,
    AppearanceConfig,
    AppearanceFrame,
    fit_appearance,
    render_appearance,
)
from handface.avatar.deformation_basis import DeformationBasis, fit_basis, load_deformations

__all__ = [
    "Appearance",
    "AppearanceConfig",
    "AppearanceFrame",
    "DeformationBasis",
    "fit_appearance",
    "fit_basis",
    "load_deformations",
    "render_appearance",
]
