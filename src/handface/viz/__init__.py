"""Pictures for people: the capture overlay (``handface.viz.capture_overlay.capture_overlay``),
deformation heat maps and contact sheets (:mod:`handface.viz.deformation_maps`); the drawing
primitives live in :mod:`handface.render`.

The function is not re-exported here: it shares its module's name, and an attribute of that
name on this package would hide the module.
"""
