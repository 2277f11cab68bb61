"""Quasi-static soft-tissue deformation of the face under rigid hand contact.

>>> from handface.physics import Collider, SoftTissueConfig, deform
"""

from handface.physics.contact import Collider
from handface.physics.soft_tissue import DeformationResult, SoftTissueConfig, deform

__all__ = ["Collider", "DeformationResult", "SoftTissueConfig", "deform"]
