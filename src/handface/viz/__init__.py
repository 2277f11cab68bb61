"""Pictures for people: deformation heat maps and contact sheets
(:mod:`handface.viz.deformation_maps`; image overlays live in :mod:`handface.render`)."""
