"""The top-level Python API: ``handface.reconstruct(image)`` (``handface.track(video)`` is the
track sub-package, callable).

Example:
    >>> import handface
    >>> capture = handface.reconstruct("examples/hand_touching_ear.jpg")  # doctest: +SKIP
    >>> capture.touching, capture.touched_regions                         # doctest: +SKIP
    >>> from handface.export.capture import export_capture
    >>> export_capture(capture, "ear.glb", "glb")                         # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np
from jaxtyping import Float, UInt8
from torch import Tensor

from handface.capture import Capture
from handface.errors import InputError

METHODS = ("fit", "dice", "hybrid")


def make_reconstructor(
    method: str = "fit",
    *,
    checkpoint: str | os.PathLike | None = None,
    focal: float | None = None,
    mode: str = "full",
):
    """The single-image capture of ``method`` (what ``handface reconstruct --method`` runs):
    ``fit`` (optimisation on MediaPipe's landmarks), ``dice`` (the network; ``checkpoint`` or
    the one shipped) or ``hybrid`` (DICE guides the fit). Call it on images to get Captures.

    Raises:
        InputError: an unknown method, or a checkpoint given to ``fit``.
    """
    from handface.fit.single_image import ReconstructConfig, Reconstructor

    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    config = ReconstructConfig(mode=mode, focal=focal)
    if method == "dice":
        from handface.dice.predictor import DicePredictor

        return DicePredictor(checkpoint, focal=focal)
    if method == "hybrid":
        from handface.hybrid import HybridReconstructor

        return HybridReconstructor(checkpoint, config)
    if checkpoint is not None:
        raise InputError("a checkpoint goes with method dice or hybrid")
    return Reconstructor(config)


def reconstruct(
    image: str | os.PathLike | UInt8[np.ndarray, "H W 3"],
    method: str = "fit",
    *,
    checkpoint: str | os.PathLike | None = None,
    focal: float | None = None,
    mode: str = "full",
    K: Float[Tensor, "3 3"] | None = None,
    depth: Float[np.ndarray, "H W"] | None = None,
) -> Capture:
    """Capture one photo (a path or an RGB uint8 array): face and hand meshes, contact and
    deformation, as ``handface reconstruct`` (the same methods and options). For many images
    build the reconstructor once with :func:`make_reconstructor`: it loads MediaPipe (and the
    network) once.

    Raises:
        InputError: unreadable image, bad options, or no face found.
    """
    if depth is not None and method == "dice":
        raise InputError("depth is used by the fit and hybrid methods; DICE takes RGB")
    reconstructor = make_reconstructor(method, checkpoint=checkpoint, focal=focal, mode=mode)
    return reconstructor(image, K=K, depth=depth)
