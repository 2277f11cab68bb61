"""The browser viewer: a :class:`~handface.view.scene.ViewScene` served with viser.

:class:`Viewer` starts a viser server (a web page with a 3D scene and a control panel) and
keeps one scene node per mesh key (``/prediction/face``, ``/ground_truth/right_hand``, ...)
plus ``/camera``, the photographing camera as a frustum with the photo on it. The panel holds:

- **Colours**: contact (grey, orange, red), plain, or the deformation ``|D|`` heat map
  (``viridis``; the colour bar and its millimetre scale are shown under it);
- **Show**: prediction, ground truth or both (when the scene has both);
- one checkbox per mesh, and one for the camera;
- for a timeline (a Sequence, an avatar's frames, a synthetic sequence): a frame slider, the
  frame's caption, and Play.

The scene keeps the result's camera frame (OpenCV: x right, y down, z forward); the viewer's up
direction is -y, and the view starts in front of the person, a little to the right and above,
so they appear upright and facing the viewer. :func:`serve` is ``handface view``.

Binding to ``127.0.0.1`` (the default) keeps the viewer on this machine; any other address
(``0.0.0.0``) serves the results to everyone who can reach that address on the network.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from pathlib import Path

import numpy as np

from handface.view.scene import (
    GROUND_TRUTH,
    PREDICTION,
    SceneModels,
    ViewMesh,
    ViewScene,
    heat_colors,
    load_scene,
)

COLOR_LABELS = {"contact": "contact", "plain": "plain", "deformation": "|D| heat map"}
SHOW_OPTIONS = {"prediction": (PREDICTION,), "ground truth": (GROUND_TRUTH,),
                "both": (PREDICTION, GROUND_TRUTH)}  # fmt: skip
VIEW_OFFSET = np.array([0.3, -0.15, -1.0])
"""Direction from the person to the initial viewpoint (camera frame: right, up, towards the
camera)."""
VIEW_DISTANCE_M = 0.55
"""Distance of the initial viewpoint from the person, at most; closer for a person nearer the
camera than :data:`VIEW_SHARE` of their distance allows (the viewpoint stays in front of the
camera's frustum, which would hide the person otherwise)."""
VIEW_SHARE = 0.7
FRUSTUM_SCALE = 0.1
"""Size of the camera frustum as a share of the person's distance from the camera."""
_LOCAL = ("127.0.0.1", "localhost", "::1")


def mesh_label(key: str) -> str:
    """``prediction/left_hand`` -> ``left hand``, ``ground_truth/face`` -> ``face (truth)``."""
    source, name = key.split("/", 1)
    label = name.replace("_", " ")
    return f"{label} (truth)" if source == GROUND_TRUTH else label


def mesh_trimesh(mesh: ViewMesh, mode: str, scale_mm: float):
    """``mesh`` as a ``trimesh.Trimesh`` coloured for ``mode`` (textured where it shows its
    texture), for viser's GLB transport."""
    import trimesh
    from PIL import Image

    from handface.export.gltf import split_uv_seams

    colors = mesh.colors(mode, scale_mm)
    vertices = np.asarray(mesh.vertices, np.float64)
    if colors is None:  # the texture
        source, faces, uvs = split_uv_seams(mesh.faces, mesh.corner_uvs)
        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=Image.fromarray(np.ascontiguousarray(mesh.texture)),
            metallicFactor=0.0, roughnessFactor=1.0, name=mesh.name,
        )  # fmt: skip
        visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
        return trimesh.Trimesh(vertices[source], faces, visual=visual, process=False)
    return trimesh.Trimesh(vertices, np.asarray(mesh.faces, np.int64),
                           vertex_colors=linear_rgb(colors), process=False)  # fmt: skip


def linear_rgb(colors: np.ndarray) -> np.ndarray:
    """sRGB bytes -> linear-light bytes: glTF's vertex colours are linear, so the browser shows
    the colour maps' own colours (it would show them washed out otherwise).

    Example:
        >>> linear_rgb(np.array([[0, 128, 255]], np.uint8)).tolist()
        [[0, 55, 255]]
    """
    c = np.asarray(colors, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return (linear * 255.0 + 0.5).astype(np.uint8)


def colour_bar(width: int = 256, height: int = 14) -> np.ndarray:
    """The ``viridis`` bar of the heat map, left (0 mm) to right (the scale)."""
    row = heat_colors(np.linspace(0.0, 1.0, width), 1.0)
    return np.ascontiguousarray(np.broadcast_to(row[None], (height, width, 3)))


class Viewer:
    """A viser server showing ``scene`` (see the module docstring); it serves from
    construction until :meth:`stop`.

    Attributes:
        handles: the scene nodes of the current frame's meshes, by mesh key.
        frustum: the camera frustum's node (``None`` without a camera).
        clients_seen: ids of every browser that has connected.
    """

    def __init__(self, scene: ViewScene, host: str = "127.0.0.1", port: int = 8080) -> None:
        import viser

        self.scene = scene
        with contextlib.redirect_stdout(io.StringIO()):  # viser's banner: serve() prints one line
            self.server = viser.ViserServer(host=host, port=port, label="handface", verbose=False)
        self.host = host
        self.handles: dict[str, object] = {}
        self.frustum = None
        self.clients_seen: set[int] = set()
        self.client_connected = threading.Event()
        self.frame = scene.start
        self._lock = threading.RLock()
        self._stopped = threading.Event()
        self._photo_frame: int | None = None
        sources = {key.split("/", 1)[0] for key in scene.mesh_keys}
        self._sources = (PREDICTION,) if PREDICTION in sources else (GROUND_TRUTH,)
        self._frustum_scale = max(0.01, FRUSTUM_SCALE * float(np.linalg.norm(scene.centre(0))))
        self.server.on_client_connect(self._on_connect)
        self.server.scene.set_up_direction("-y")
        self._place_view()
        self._build_gui(sources)
        self._draw()
        self._player = threading.Thread(target=self._play_loop, name="handface-view-play",
                                        daemon=True)  # fmt: skip
        self._player.start()

    # -- public ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.get_port()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def set_visible(self, key: str, visible: bool) -> None:
        """Show or hide mesh ``key`` (as its checkbox does)."""
        self.mesh_boxes[key].value = bool(visible)

    def set_color_mode(self, mode: str) -> None:
        """``contact``, ``plain`` or ``deformation`` (as the Colours menu does)."""
        self.color_menu.value = COLOR_LABELS[mode]

    def set_frame(self, t: int) -> None:
        """Show frame ``t`` (as the slider does)."""
        if self.frame_slider is None:
            if t != 0:
                raise IndexError(f"frame {t}: the scene has one frame")
            return
        self.frame_slider.value = int(t)

    def stop(self) -> None:
        """Stop serving (quietly: viser's own goodbye line is dropped)."""
        self._stopped.set()
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    # -- GUI -------------------------------------------------------------------------------

    def _build_gui(self, sources: set[str]) -> None:
        gui, scene = self.server.gui, self.scene
        gui.add_markdown(f"**{scene.title}**")
        self.color_menu = gui.add_dropdown("Colours", tuple(COLOR_LABELS.values()),
                                           initial_value=COLOR_LABELS["contact"])  # fmt: skip
        self.color_menu.on_update(lambda _: self._draw())
        with gui.add_folder("Deformation |D|"):
            gui.add_image(colour_bar(), label="viridis")
            gui.add_markdown(f"0 mm (violet) to {scene.deformation_scale_mm:g} mm (yellow) "
                             "and above")  # fmt: skip
        self.show_menu = None
        if sources == {PREDICTION, GROUND_TRUTH}:
            self.show_menu = gui.add_dropdown("Show", tuple(SHOW_OPTIONS),
                                              initial_value="prediction")  # fmt: skip
            self.show_menu.on_update(lambda _: self._on_show())
        self.mesh_boxes = {}
        with gui.add_folder("Meshes"):
            for key in scene.mesh_keys:
                box = gui.add_checkbox(mesh_label(key), True)
                box.on_update(lambda _: self._apply_visibility())
                self.mesh_boxes[key] = box
            self.camera_box = None
            if scene.camera is not None:
                self.camera_box = gui.add_checkbox("camera and photo", True)
                self.camera_box.on_update(lambda _: self._apply_visibility())
        self.frame_slider = self.play_box = self.caption = None
        if scene.num_frames > 1:
            with gui.add_folder("Timeline"):
                self.caption = gui.add_markdown(scene.frame_labels[self.frame])
                self.frame_slider = gui.add_slider("Frame", min=0, max=scene.num_frames - 1,
                                                   step=1, initial_value=self.frame)  # fmt: skip
                self.frame_slider.on_update(lambda _: self._on_frame())
                self.play_box = gui.add_checkbox("Play", False)

    def _on_show(self) -> None:
        self._sources = SHOW_OPTIONS[self.show_menu.value]
        self._apply_visibility()

    def _on_frame(self) -> None:
        self.frame = int(self.frame_slider.value)
        if self.caption is not None:
            self.caption.content = self.scene.frame_labels[self.frame]
        self._draw()

    def _on_connect(self, client) -> None:
        self.clients_seen.add(int(client.client_id))
        self.client_connected.set()

    # -- scene -----------------------------------------------------------------------------

    def _place_view(self) -> None:
        centre = self.scene.centre(self.frame)
        distance = min(VIEW_DISTANCE_M, VIEW_SHARE * float(np.linalg.norm(centre)))
        offset = VIEW_OFFSET / np.linalg.norm(VIEW_OFFSET) * max(distance, 0.05)
        initial = self.server.initial_camera
        initial.position = tuple(float(v) for v in centre + offset)
        initial.look_at = tuple(float(v) for v in centre)
        initial.up = (0.0, -1.0, 0.0)
        initial.fov = float(np.deg2rad(45.0))

    def _shown(self, key: str) -> bool:
        return key.split("/", 1)[0] in self._sources and bool(self.mesh_boxes[key].value)

    def _apply_visibility(self) -> None:
        with self._lock:
            for key, handle in self.handles.items():
                handle.visible = self._shown(key)
            if self.frustum is not None:
                self.frustum.visible = bool(self.camera_box.value)

    def _draw(self) -> None:
        """(Re)create the current frame's meshes in the current colour mode."""
        with self._lock:
            mode = next(m for m, label in COLOR_LABELS.items() if label == self.color_menu.value)
            meshes = self.scene.meshes(self.frame)
            present = {mesh.key for mesh in meshes}
            for key in [k for k in self.handles if k not in present]:
                self.handles.pop(key).remove()
            for mesh in meshes:
                self.handles[mesh.key] = self.server.scene.add_mesh_trimesh(
                    f"/{mesh.key}", mesh_trimesh(mesh, mode, self.scene.deformation_scale_mm),
                    visible=self._shown(mesh.key),
                )  # fmt: skip
            self._draw_camera()

    def _draw_camera(self) -> None:
        camera = self.scene.camera
        if camera is None or self._photo_frame == self.frame:
            return
        photo = self.scene.photo(self.frame)  # None: a bare frustum
        self._photo_frame = self.frame
        self.frustum = self.server.scene.add_camera_frustum(
            "/camera", fov=camera.vertical_fov, aspect=camera.aspect, scale=self._frustum_scale,
            thickness=0.002, color=(60, 60, 60), image=photo,
            visible=bool(self.camera_box.value),
        )  # fmt: skip

    def _play_loop(self) -> None:
        while not self._stopped.is_set():
            if self.play_box is None or not self.play_box.value:
                self._stopped.wait(0.1)
                continue
            started = time.monotonic()
            self.frame_slider.value = (self.frame + 1) % self.scene.num_frames
            spent = time.monotonic() - started
            self._stopped.wait(max(1.0 / self.scene.fps - spent, 0.01))


def serve(
    path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    index: int = 0,
    gt: Path | None = None,
    models: SceneModels | None = None,
) -> None:
    """``handface view``: load ``path`` (:func:`~handface.view.scene.load_scene`), print the
    address, and serve until Ctrl-C (which propagates as ``KeyboardInterrupt`` after the
    server has stopped).

    Binding ``host`` to anything but 127.0.0.1 exposes the results to the network.
    """
    serve_scene(load_scene(path, index=index, gt=gt, models=models), host=host, port=port)


def serve_scene(scene: ViewScene, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve an already loaded ``scene`` (e.g. :func:`~handface.view.scene.capture_scene` of
    an in-memory Capture: ``Capture.show()``) until Ctrl-C, as :func:`serve`."""
    viewer = Viewer(scene, host=host, port=port)
    where = "" if host in _LOCAL else f" (listening on {host}: reachable from the network)"
    print(f"handface view: {scene.title} at {viewer.url}{where}; Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(1.0)
    finally:
        viewer.stop()
