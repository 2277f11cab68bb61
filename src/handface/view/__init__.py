"""``handface view``: any result folder as a 3D scene in the browser (viser).

:mod:`handface.view.scene` reads a Capture, Sequence, avatar or synthetic dataset folder into
named meshes per frame (no browser needed); :mod:`handface.view.server` serves them with
viser: colour modes (contact, plain, the ``|D|`` heat map), ground truth vs prediction, a
checkbox per mesh, the camera frustum with the photo, and a timeline with Play.

Example:
    >>> from handface.view import load_scene, serve
    >>> load_scene(Path("out/photo")).mesh_keys                  # doctest: +SKIP
    ['prediction/face', 'prediction/left_hand']
    >>> serve(Path("out/photo"))     # http://127.0.0.1:8080 until Ctrl-C  # doctest: +SKIP
"""

from handface.view.scene import ViewMesh, ViewScene, folder_kind, load_scene

__all__ = ["ViewMesh", "ViewScene", "folder_kind", "load_scene", "serve"]


def serve(*args, **kwargs):
    """:func:`handface.view.server.serve` (imported on use: viser loads only for the viewer)."""
    from handface.view.server import serve as _serve

    return _serve(*args, **kwargs)
