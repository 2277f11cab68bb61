"""handface: 3D hand-face interaction capture on a CPU.

Layout (one concern per sub-package): ``models`` (head and hand body models, landmark
embeddings, face regions and tissue stiffness), ``geometry`` (distances, signed distance,
alignment, projection), ``render`` (CPU rasterizer), ``viz``, ``cli`` and ``bench``.
"""

__version__ = "0.1.0"
