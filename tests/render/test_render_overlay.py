"""Overlays over photos, colour maps and atomic PNG writing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from handface.errors import InputError
from handface.geometry.camera import intrinsics_from_fov
from handface.render import (
    COLORMAPS,
    DirectionalLight,
    colormap,
    composite,
    overlay_meshes,
    rasterize,
    save_png,
    to_uint8,
)


def _photo(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _triangle():
    v = torch.tensor([[-0.3, -0.3, 1.0], [0.3, -0.3, 1.0], [0.0, 0.3, 1.0]])
    return v, torch.tensor([[0, 1, 2]])


def test_overlay_keeps_the_photo_where_nothing_is_drawn():
    photo = _photo()
    K = intrinsics_from_fov(32, 24, 60.0)
    v, f = _triangle()
    mask = rasterize(v, f, K, 24, 32).mask.numpy()
    assert 0 < mask.sum() < mask.size
    out = overlay_meshes(photo, [(v, f)], K, opacity=0.6)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    np.testing.assert_array_equal(out[~mask], photo[~mask])
    assert (out[mask] != photo[mask]).any(axis=-1).mean() > 0.9
    # Nothing to draw (mesh behind the camera): the photo comes back unchanged.
    behind = overlay_meshes(photo, [(v * torch.tensor([1.0, 1.0, -1.0]), f)], K)
    np.testing.assert_array_equal(behind, photo)


def test_opaque_overlay_shows_the_heat_map_colours():
    # Opacity 1 and a flat ambient light: covered pixels show exactly the colour-mapped value.
    photo = _photo()
    K = intrinsics_from_fov(32, 24, 60.0)
    v, f = _triangle()
    flat = DirectionalLight(ambient=1.0, diffuse=0.0)
    out = overlay_meshes(
        photo, [(v, f)], K, vertex_values=[torch.ones(3)], opacity=1.0, light=flat, cmap="contact"
    )
    mask = rasterize(v, f, K, 24, 32).mask.numpy()
    red = np.round(np.array(COLORMAPS["contact"][-1]) * 255).astype(np.uint8)
    assert (np.abs(out[mask].astype(int) - red).max()) <= 1
    with pytest.raises(InputError):
        overlay_meshes(photo, [(v, f)], K, vertex_values=[torch.ones(4)])
    with pytest.raises(InputError):
        overlay_meshes(photo[..., 0], [(v, f)], K)


def test_overlay_two_meshes_uses_per_mesh_colours_with_occlusion():
    photo = np.zeros((24, 32, 3), dtype=np.uint8)
    K = intrinsics_from_fov(32, 24, 60.0)
    v, f = _triangle()
    far = v * torch.tensor([2.0, 2.0, 2.0])  # same silhouette, twice as far
    flat = DirectionalLight(ambient=1.0, diffuse=0.0)
    out = overlay_meshes(
        photo,
        [(far, f), (v, f)],
        K,
        colors=[(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)],
        opacity=1.0,
        light=flat,
    )
    mask = rasterize(v, f, K, 24, 32).mask.numpy()
    assert (out[mask] == [0, 0, 255]).all()  # the nearer (blue) mesh hides the far one


def test_colormap_endpoints_clamping_and_interpolation():
    for name, anchors in COLORMAPS.items():
        c = colormap(torch.tensor([0.0, 1.0, -3.0, 7.0, float("nan")]), name)
        torch.testing.assert_close(c[0], torch.tensor(anchors[0]))
        torch.testing.assert_close(c[1], torch.tensor(anchors[-1]))
        torch.testing.assert_close(c[2], c[0])  # clamped below
        torch.testing.assert_close(c[3], c[1])  # clamped above
        torch.testing.assert_close(c[4], c[0])  # NaN like 0
    mid = colormap(torch.tensor([0.25]), "contact")[0]  # halfway between anchors 0 and 1
    expected = (torch.tensor(COLORMAPS["contact"][0]) + torch.tensor(COLORMAPS["contact"][1])) / 2
    torch.testing.assert_close(mid, expected)
    assert colormap(torch.zeros(2, 5), "viridis").shape == (2, 5, 3)
    with pytest.raises(InputError):
        colormap(torch.zeros(3), "jet")


def test_composite_blends_only_where_alpha_is_positive():
    photo = _photo(4, 5)
    rgb = torch.full((4, 5, 3), 1.0)
    alpha = torch.zeros(4, 5)
    alpha[1, 2] = 1.0
    alpha[2, 3] = 0.5
    out = composite(photo, rgb, alpha, opacity=1.0)
    keep = alpha.numpy() == 0
    np.testing.assert_array_equal(out[keep], photo[keep])
    np.testing.assert_array_equal(out[1, 2], [255, 255, 255])
    np.testing.assert_array_equal(
        out[2, 3], np.floor(photo[2, 3] * 0.5 + 127.5 + 0.5).astype(np.uint8)
    )


def test_save_png_round_trip_atomic_and_overwrite(tmp_path):
    image = _photo(6, 7)
    path = save_png(tmp_path / "sub" / "a.png", image)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), image)
    # Floats in [0, 1] are converted; the file is replaced in place.
    save_png(path, torch.zeros(6, 7, 3))
    np.testing.assert_array_equal(np.asarray(Image.open(path)), np.zeros((6, 7, 3), np.uint8))
    gray = save_png(tmp_path / "g.png", np.full((3, 4), 0.5))
    assert np.asarray(Image.open(gray)).tolist() == [[128] * 4] * 3
    with pytest.raises(InputError):
        save_png(tmp_path / "bad.png", np.zeros((2, 2, 5), np.uint8))
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == ["a.png", "g.png"]  # no temporary files, nothing for the bad image
    assert os.stat(path).st_mode & 0o044  # readable by others, unlike a raw mkstemp file


def test_to_uint8_rounds_and_clamps():
    out = to_uint8(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]]))
    assert out.tolist() == [[0, 0, 128, 255, 255]]
    assert to_uint8(np.array([[True, False]])).tolist() == [[255, 0]]
