"""`handface view` in a real browser: headless Chromium (WebGL in software, SwiftShader) opens
the viewer of a Capture folder; the server sees it connect, holds the named meshes, and the
page shows them (the screenshot changes where they are when they are hidden).

Needs Chromium (Debian/Ubuntu: `sudo apt install chromium`); skipped without it. The page is
driven over the DevTools protocol (the websocket client viser brings), so the screenshots are
taken once the page has settled rather than after a fixed time.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handface.data.synth import SynthDataset
from handface.io import save_capture
from handface.view.scene import load_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_capture_folder import capture_from_sample  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian/Ubuntu: sudo apt install chromium)"
)
# WebGL without a GPU: ANGLE on SwiftShader (Chromium refuses it unless told it is wanted)
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--hide-scrollbars",
    "--window-size=900,700",
)
SIZE = (700, 900)


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not port_file.is_file() or not port_file.read_text().strip():
                assert time.monotonic() < deadline, "Chromium did not start its DevTools server"
                assert self.process.poll() is None, "Chromium exited at start"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            self.socket = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        except BaseException:
            self.close()
            raise
        self._id = 0
        self._events: set[str] = set()
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=SIZE[1], height=SIZE[0],
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def call(self, method: str, **params):
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=120))
            if "method" in message:
                self._events.add(message["method"])
            if message.get("id") == self._id:
                assert "error" not in message, message["error"]
                return message["result"]

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self._events.discard("Page.loadEventFired")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 90
        while "Page.loadEventFired" not in self._events:
            assert time.monotonic() < deadline, f"{url} did not load"
            message = json.loads(self.socket.recv(timeout=90))
            if "method" in message:
                self._events.add(message["method"])

    def screenshot(self) -> np.ndarray:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            return np.asarray(image.convert("RGB")).astype(np.int64)

    def settled(self, unlike: np.ndarray | None = None, timeout: float = 90.0) -> np.ndarray:
        """A screenshot once the page stops changing (unchanged over 2 s), and differs from
        ``unlike`` when given."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            shot = self.screenshot()
            if last is None or not np.array_equal(shot, last):
                last, since = shot, time.monotonic()
            elif time.monotonic() - since >= 2.0 and (
                unlike is None or not np.array_equal(shot, unlike)
            ):
                return shot
            time.sleep(0.4)
        raise AssertionError(f"the page did not settle within {timeout:.0f} s")

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def capture_folder(tmp_path_factory):
    from handface.synth import generate

    root = tmp_path_factory.mktemp("viewer")
    data = generate(root / "samples", num=1, seed=8, size=96, progress=False)
    dataset = SynthDataset(data)
    capture = replace(capture_from_sample(dataset[0], 0), source=str(dataset.image_path(0)))
    return save_capture(capture, root / "capture")


def test_chromium_shows_the_capture_and_the_server_sees_it(capture_folder, tmp_path):
    from handface.view.server import Viewer

    scene = load_scene(capture_folder)
    viewer = Viewer(scene, host="127.0.0.1", port=0)  # a free port
    browser = None
    try:
        assert viewer.url == f"http://127.0.0.1:{viewer.port}" and viewer.port > 0
        assert not viewer.clients_seen
        browser = Browser(tmp_path / "profile")
        browser.open(viewer.url)
        assert viewer.client_connected.wait(60), "the page never connected to the server"
        shown = browser.settled()
        Image.fromarray(shown.astype(np.uint8)).save(tmp_path / "shown.png")
        assert len(viewer.clients_seen) == 1
        assert sorted(viewer.handles) == ["prediction/face", "prediction/right_hand"]
        assert all(handle.visible for handle in viewer.handles.values())
        assert viewer.frustum is not None and viewer.frustum.visible
        # the colour modes redraw every mesh (the heat map, then back to contact)
        viewer.set_color_mode("deformation")
        heat = browser.settled(unlike=shown)
        Image.fromarray(heat.astype(np.uint8)).save(tmp_path / "heat.png")
        viewer.set_color_mode("contact")
        assert sorted(viewer.handles) == ["prediction/face", "prediction/right_hand"]
        # the meshes hidden, the camera and its photo still shown
        for key in scene.mesh_keys:
            viewer.set_visible(key, False)
        assert not any(handle.visible for handle in viewer.handles.values())
        assert viewer.frustum.visible
        hidden = browser.settled(unlike=heat)
        Image.fromarray(hidden.astype(np.uint8)).save(tmp_path / "hidden.png")
        assert len(viewer.clients_seen) == 1
    finally:
        if browser is not None:
            browser.close()
        viewer.stop()
    assert shown.shape == hidden.shape == (*SIZE, 3)
    assert shown.std() > 20  # not a blank page
    # the meshes: a good part of the window, in the middle of the 3D view (left of the panel);
    # the camera's frustum with the photo is not in front of them
    changed = np.abs(shown - hidden).sum(axis=-1) > 30
    assert changed.mean() > 0.03, f"only {changed.mean():.2%} of the pixels show the meshes"
    rows, cols = np.nonzero(changed)
    assert 150 < rows.mean() < 550 and 150 < cols.mean() < 650
    # the contact colours are on screen: some reddish pixels where the hand touches the cheek
    r, g, b = (shown[..., i][changed] for i in range(3))
    assert ((r > 150) & (r - g > 60) & (r - b > 60)).sum() > 20

    # the |D| heat map: the face turns viridis' dark violet (little |D| away from the finger)
    def violet(image: np.ndarray) -> np.ndarray:
        r, g, b = (image[..., i][changed] for i in range(3))
        return (g < 60) & (b > g + 20) & (r < 150)

    assert violet(heat).mean() > 0.2 and violet(shown).mean() < 0.01
