"""The head avatar with hand-contact deformation (METHOD.md §4); so far its deformation basis."""

from handface.avatar.deformation_basis import DeformationBasis, fit_basis, load_deformations

__all__ = ["DeformationBasis", "fit_basis", "load_deformations"]
