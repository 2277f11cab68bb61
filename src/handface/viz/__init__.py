"""Pictures for people: deformation heat maps and contact sheets (overlays live in render)."""

from handface.viz.deformation_maps import contact_sheet, deformation_colours, render_heatmap

__all__ = ["contact_sheet", "deformation_colours", "render_heatmap"]
