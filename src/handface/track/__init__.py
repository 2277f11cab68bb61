"""Video capture: temporally coherent face, hands, contact and deformation over frames.

- :mod:`~handface.track.bridge`: short gaps where the detector loses a hand near the face.
- :mod:`~handface.track.decisions`: touching verdicts that change only on evidence.
"""
