"""The avatar's picture sheet: the error panel's colours and the sheet's layout."""

from __future__ import annotations

import numpy as np

from handface.viz.avatar_sheet import CAPTION, avatar_sheet, error_panel


def test_error_panel_colours_exact():
    photo = np.zeros((4, 4, 3), np.uint8)
    rendered = photo.copy()
    rendered[0, 0] = 255  # RGB distance sqrt(3) > scale: saturates to white
    region = np.ones((4, 4), bool)
    region[3, 3] = False
    panel = error_panel(rendered, photo, region, scale=0.25)
    assert panel.dtype == np.uint8 and panel.shape == (4, 4, 3)
    assert panel[0, 0].tolist() == [255, 255, 255]
    assert panel[1, 1].tolist() == [0, 0, 0]  # no error: black
    assert panel[3, 3].tolist() == [200, 200, 200]  # outside the region: grey


def test_sheet_layout():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    rows = [{"panels": [red, red, red], "caption": "a"}, {"panels": [red], "caption": "b"}]
    sheet = np.asarray(avatar_sheet(rows, size=16))
    assert sheet.shape == (2 * (16 + CAPTION), 3 * 16, 3)
    assert sheet[0, 0].tolist() == [255, 0, 0]  # panels are resized to the cell
    assert sheet[16 + CAPTION, 16].tolist() == [255, 255, 255]  # a short row leaves white
