"""The constructed cheek scene of the interaction tests (fit and track), with known geometry.

The average head turned 40 degrees so that its right cheek faces the camera, and a flat right
hand whose palm faces the cheek, placed on the viewing ray through the cheek. At offset 0 along
that ray the hand just touches the skin (closest signed distance 0); negative offsets put it in
front of the face, positive ones push it into / behind the face surface. The "detections" are
the projections of the hand's keypoints and the head's landmarks, so the image evidence is
exactly what a photo of that hand would give.
"""

from dataclasses import dataclass

import numpy as np
import roma
import torch

from handface.fit.evidence import HandFaceEvidence, hand_face_evidence, hand_mask
from handface.fit.hand_fit import HandFit
from handface.fit.head_fit import HeadFit, HeadFitConfig, landmark_weights
from handface.fit.interaction import refine_interaction
from handface.geometry.camera import intrinsics_from_fov, project_points
from handface.geometry.distance import signed_distance
from handface.models import HandParams, HeadParams
from handface.models.scene import head_rotation
from handface.render.rasterizer import rasterize

SIZE = 256
K = intrinsics_from_fov(SIZE, SIZE, 30.0, dtype=torch.float64)


@dataclass
class Scene:
    head_model: object
    hand_model: object
    head: HeadFit
    silhouette: np.ndarray
    head_depth: torch.Tensor
    landmarks2d: np.ndarray
    rotation: torch.Tensor
    canonical_vertices: torch.Tensor
    canonical_keypoints: torch.Tensor
    cheek: torch.Tensor
    ray: torch.Tensor
    palm: torch.Tensor
    touch: float

    def hand(self, offset: float) -> HandFit:
        """The hand ``offset`` metres along the cheek's viewing ray from touching."""
        transl = self.cheek + (self.touch + offset) * self.ray - self.rotation @ self.palm
        return HandFit(
            side="right",
            params=HandParams(
                global_orient=roma.rotmat_to_rotvec(self.rotation)[None],
                transl=transl[None],
                articulation=torch.zeros(1, 20),
            ),
            rotation=self.rotation,
            canonical_vertices=self.canonical_vertices,
            canonical_keypoints=self.canonical_keypoints,
            vertices=self.canonical_vertices @ self.rotation.T + transl,
            keypoints=self.canonical_keypoints @ self.rotation.T + transl,
            reprojection_px=0.0,
        )

    def sdf(self, vertices: torch.Tensor, head_vertices: torch.Tensor | None = None):
        head_vertices = self.head.vertices if head_vertices is None else head_vertices
        faces = self.head_model.faces
        return signed_distance(vertices.double(), head_vertices.double(), faces).sdf

    def evidence(self, hand: HandFit) -> tuple[np.ndarray, HandFaceEvidence]:
        keypoints2d = project_points(hand.keypoints.double(), K).numpy()
        mask = hand_mask(keypoints2d, (SIZE, SIZE))
        return keypoints2d, hand_face_evidence(mask, self.silhouette)

    def refine(self, hand: HandFit, config=None, evidence=None, guide=None):
        keypoints2d, observed = self.evidence(hand)
        evidence = observed if evidence is None else evidence
        weights = landmark_weights(self.landmarks2d, [evidence.overlap], HeadFitConfig())
        return refine_interaction(
            self.head,
            [hand],
            head_faces=self.head_model.faces,
            K=K,
            face_landmarks2d=self.landmarks2d,
            landmark_weights=weights,
            hand_keypoints2d=[keypoints2d],
            head_depth=self.head_depth,
            evidence=[evidence],
            config=config,
            guidance=None if guide is None else [guide],
        )

    def hidden(self, hand: HandFit, head_vertices: torch.Tensor, tolerance: float) -> int:
        """Hand vertices on the image's hand-over-face pixels that lie behind the face there."""
        depth = rasterize(head_vertices.float(), self.head_model.faces, K.float(), SIZE, SIZE).zbuf
        _, evidence = self.evidence(self.hand(0.0))
        uv = project_points(hand.vertices.double(), K)
        col = uv[:, 0].round().long().clamp(0, SIZE - 1)
        row = uv[:, 1].round().long().clamp(0, SIZE - 1)
        on_face = torch.as_tensor(evidence.overlap)[row, col]
        behind = hand.vertices[:, 2].double() > depth[row, col].double() + tolerance
        return int((on_face & behind).sum())


def build_scene(head_model, right_hand) -> Scene:
    """The scene on the given models (see the module docstring)."""
    rotation = head_rotation(40.0, 0.0)
    params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=torch.tensor([[0.0, 0.12, 0.6]]),
    )
    with torch.no_grad():
        out = head_model(params)
        rest = right_hand(HandParams(articulation=torch.zeros(1, 20)))
    canonical = out.extras["canonical_vertices"][0]
    # the right cheek: the front-most skin point below the right cheekbone (as in models.scene)
    near = ((canonical[:, 0] + 0.047).abs() < 0.006) & ((canonical[:, 2] - 0.085).abs() < 0.006)
    candidates = torch.nonzero(near)[:, 0]
    cheek = out.vertices[0, candidates[canonical[candidates, 1].argmin()]]
    head = HeadFit(
        params=params,
        rotation=rotation,
        canonical_vertices=canonical,
        vertices=out.vertices[0],
        landmarks=out.landmarks[0],
        landmarks68=out.landmarks68[0],
        reprojection_px=0.0,
    )
    depth = rasterize(head.vertices, head_model.faces, K.float(), SIZE, SIZE).zbuf
    # hand frame -> camera: palm normal (-x) away from the camera, fingers (+y) up the image
    x, y = torch.tensor([0.0, 0.0, -1.0]), torch.tensor([0.0, -1.0, 0.0])
    hand_rotation = torch.stack([x, y, torch.linalg.cross(x, y)], dim=1)
    scene = Scene(
        head_model=head_model,
        hand_model=right_hand,
        head=head,
        silhouette=torch.isfinite(depth).numpy(),
        head_depth=depth,
        landmarks2d=project_points(head.landmarks.double(), K).numpy(),
        rotation=hand_rotation,
        canonical_vertices=rest.vertices[0],
        canonical_keypoints=rest.keypoints[0],
        cheek=cheek,
        ray=cheek / cheek.norm(),
        palm=rest.keypoints[0, [0, 5, 9, 13, 17]].mean(0),
        touch=0.0,
    )
    low, high = -0.08, 0.0  # bisection for the offset where the hand just touches
    assert float(scene.sdf(scene.hand(low).vertices).min()) > 0
    assert float(scene.sdf(scene.hand(high).vertices).min()) < 0
    for _ in range(25):
        middle = (low + high) / 2
        if float(scene.sdf(scene.hand(middle).vertices).min()) > 0:
            low = middle
        else:
            high = middle
    scene.touch = low
    assert abs(float(scene.sdf(scene.hand(0.0).vertices).min())) < 1e-5
    _, evidence = scene.evidence(scene.hand(0.0))
    assert evidence.overlap_fraction > 0.9  # the hand covers the cheek in the image
    return scene
