"""Video capture: temporally coherent face, hands, contact and deformation over frames.

``handface.track(video, out=None, ...)`` (this package is callable: it is
:func:`~handface.track.run.track_video`) returns a :class:`~handface.sequence.Sequence`.

- :mod:`~handface.track.tracker`: windows over the frame stream, stages I-III, per-frame capture.
- :mod:`~handface.track.head_track`, :mod:`~handface.track.hand_track`,
  :mod:`~handface.track.interaction_track`: the three stages, each over a window of frames.
- :mod:`~handface.track.bridge`: short gaps where the detector loses a hand near the face.
- :mod:`~handface.track.decisions`: touching verdicts that change only on evidence.
- :mod:`~handface.track.run`: reading the video, tracking, writing the Sequence folder.
"""

from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    """``handface.track`` is both this package and the function users call."""

    def __call__(self, video, out=None, **kwargs):
        from handface.track.run import track_video

        return track_video(video, out, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
