"""handface: 3D hand-face interaction capture on a CPU.

Layout (one concern per sub-package): ``models`` (head and hand body models, landmark
embeddings, face regions and tissue stiffness), ``geometry`` (distances, signed distance,
alignment, projection), ``render`` (CPU rasterizer), ``viz``, ``cli`` and ``bench``.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``handface.track(video)``: the sub-package is callable (handface.track.run.track_video);
    # ``handface.reconstruct(image)``: handface.api. Loaded on first use so ``import handface``
    # stays light
    if name == "track":
        import handface.track

        return handface.track
    if name in ("reconstruct", "make_reconstructor"):
        from handface import api

        return getattr(api, name)
    raise AttributeError(f"module 'handface' has no attribute {name!r}")
