"""Both hands from one hand branch: the left hand is the right hand of the mirrored crop.

DICE's network (:class:`~handface.dice.model.DiceNet`) predicts the face and the *right*
hand. :func:`predict_both_hands` runs it once on the batch ``[I, flip(I)]`` (``flip``: the
crop mirrored left-right) and returns

* the right hand: the prediction on ``I``;
* the left hand: the right hand predicted on ``flip(I)``, mirrored back: x negated (in the
  network's frame and in the hands' canonical frames, see
  :class:`~handface.models.mesh_sampling.MirrorMaps`), vertices re-indexed through the
  right -> left correspondence, the compact articulation's abductions negated;
* the face: the average of the prediction on ``I`` and the mirrored prediction on
  ``flip(I)`` (vertices re-indexed by the head's left-right vertex map, facial actions by
  their left/right pairs);
* the camera ``(s, tx, ty)`` averaged the same way (mirroring negates ``tx``).

Mirror property: the outputs for ``flip(I)`` are exactly (up to float rounding) the mirror of
the outputs for ``I`` — the face mirrored, the right hand of ``flip(I)`` the mirrored left
hand of ``I`` and vice versa — for any network, trained or not, in eval mode. The exceptions
are head vertices without a mirror partner (:attr:`MirrorMaps.head_matched`: Anny's 32
vertices at the back of the left eyeball, inside the head), which keep the prediction on ``I``.

Contact probabilities are bounded by the touch verdicts (:class:`~handface.dice.model.TouchHead`):
no hand vertex is likelier in contact than its hand touching the face, and no face vertex
likelier than the likelier of the two hands. So a hand the network judges not touching has no
vertex in contact, and every consumer (capture, hybrid guide, metrics) sees one verdict.

The averaged face parameters are mirrored the same way (rotations averaged and projected back
onto SO(3)); the face meshes are the averages of the two meshes, so they can differ from the
model evaluated at the averaged parameters by the model's own asymmetry.

Example:
    >>> from handface.models import AnnyHandModel, AnnyHeadModel
    >>> from handface.dice.model import DiceNet, get_config
    >>> net = DiceNet(get_config("dice-small"), AnnyHeadModel(), AnnyHandModel("right")).eval()
    >>> with torch.no_grad():
    ...     pred = predict_both_hands(net, torch.rand(1, 3, 224, 224))
    >>> pred.left.vertices.shape, pred.face.vertices.shape
    (torch.Size([1, 1609, 3]), torch.Size([1, 4538, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.dice.model import DiceNet, DiceOutput
from handface.models.base import HandParams, HeadParams
from handface.models.mesh_sampling import MirrorMaps
from handface.models.mesh_sampling import reflect_points as _reflect
from handface.models.mesh_sampling import reflect_rotation as _reflect_rotation


@dataclass
class HandPrediction:
    """One hand, in the network's frame (batch first)."""

    side: str
    vertices: Float[Tensor, "B Vh 3"]
    """The parametric hand ``V_H``."""
    keypoints: Float[Tensor, "B 21 3"]
    """Keypoints of the parametric hand (MediaPipe order)."""
    vertices_upsampled: Float[Tensor, "B Vh 3"]
    """The non-parametric hand, upsampled from the coarse vertices."""
    vertices_coarse: Float[Tensor, "B Nh 3"]
    """Coarse vertices (left hand: the mirrors of the right hand's coarse vertices)."""
    keypoints_coarse: Float[Tensor, "B 21 3"]
    contact_logits: Float[Tensor, "B Vh"]
    params: HandParams
    """Parameters of this side's model (``global_orient``/``transl``: the network frame). A
    mirrored hand's ``articulation`` is ``None`` for backends without a mirror rule for their
    pose latent (:attr:`MirrorMaps.hand_articulation_sign`; Anny has one)."""
    rotation: Float[Tensor, "B 3 3"]
    presence_logits: Float[Tensor, " B"]
    """Logit that this hand is in the crop."""
    touch_logits: Float[Tensor, " B"]
    """Logit that this hand touches the face (``contact_logits`` are bounded by it)."""

    @property
    def contact(self) -> Float[Tensor, "B Vh"]:
        return torch.sigmoid(self.contact_logits)

    @property
    def presence(self) -> Float[Tensor, " B"]:
        """Probability that this hand is in the crop."""
        return torch.sigmoid(self.presence_logits)

    @property
    def touch(self) -> Float[Tensor, " B"]:
        """Probability that this hand touches the face."""
        return torch.sigmoid(self.touch_logits)


@dataclass
class FacePrediction:
    """The face, symmetrised over the crop and its mirror (network frame, batch first)."""

    vertices: Float[Tensor, "B Vf 3"]
    """The deformed face ``V_F``."""
    vertices_undeformed: Float[Tensor, "B Vf 3"]
    deformation: Float[Tensor, "B Vf 3"]
    vertices_upsampled: Float[Tensor, "B Vf 3"]
    contact_logits: Float[Tensor, "B Vf"]
    landmarks68: Float[Tensor, "B 68 3"]
    keypoints_coarse: Float[Tensor, "B 68 3"]
    params: HeadParams
    rotation: Float[Tensor, "B 3 3"]

    @property
    def contact(self) -> Float[Tensor, "B Vf"]:
        return torch.sigmoid(self.contact_logits)


@dataclass
class DicePrediction:
    """Face, both hands and the camera of a batch of crops."""

    face: FacePrediction
    right: HandPrediction
    left: HandPrediction
    camera: Float[Tensor, "B 3"]


def _reflect_rotvec(rotvec: Tensor) -> Tensor:
    # A rotation conjugated by the reflection x -> -x: axis-angle (x, -y, -z).
    return rotvec * rotvec.new_tensor((1.0, -1.0, -1.0))


def mirror_camera(camera: Float[Tensor, "B 3"]) -> Float[Tensor, "B 3"]:
    """The camera of the mirrored crop: ``(s, -tx, ty)``."""
    return camera * camera.new_tensor((1.0, -1.0, 1.0))


class _FaceSymmetry:
    """``0.5 * (x + mirror(x_flipped))`` for the face's fields (see the module docstring)."""

    def __init__(self, mirror: MirrorMaps, device: torch.device) -> None:
        self.perm = mirror.head_vertices.to(device)
        self.matched = mirror.head_matched.to(device)
        self.landmarks = mirror.landmarks68.to(device)
        self.expression = mirror.expression.to(device)

    def vertices(self, x: Tensor, flipped: Tensor, points: bool = True) -> Tensor:
        mirrored = flipped[:, self.perm]
        if points:
            mirrored = _reflect(mirrored)
        average = 0.5 * (x + mirrored)
        keep = self.matched if x.dim() == 2 else self.matched[:, None]
        return torch.where(keep, average, x)

    def landmarks68(self, x: Tensor, flipped: Tensor) -> Tensor:
        return 0.5 * (x + _reflect(flipped[:, self.landmarks]))

    def params(self, p: HeadParams, q: HeadParams, rotation: Tensor, transl: Tensor) -> HeadParams:
        def rotvec(a: Tensor | None, b: Tensor | None) -> Tensor | None:
            return None if a is None or b is None else 0.5 * (a + _reflect_rotvec(b))

        return HeadParams(
            global_orient=roma.rotmat_to_rotvec(rotation),
            transl=transl,
            neck=rotvec(p.neck, q.neck),
            jaw=rotvec(p.jaw, q.jaw),
            expression=0.5 * (p.expression + q.expression[:, self.expression]),
            shape=0.5 * (p.shape + q.shape),
        )


def _take(output: DiceOutput, rows: slice) -> DiceOutput:
    values = {}
    for name, value in vars(output).items():
        if isinstance(value, Tensor):
            values[name] = value[rows]
        elif isinstance(value, (HeadParams, HandParams)):
            values[name] = type(value)(
                **{k: None if v is None else v[rows] for k, v in vars(value).items()}
            )
        else:
            values[name] = value
    return DiceOutput(**values)


def _right_hand(out: DiceOutput) -> HandPrediction:
    return HandPrediction(
        side="right",
        vertices=out.hand_vertices,
        keypoints=out.hand_keypoints,
        vertices_upsampled=out.hand_vertices_upsampled,
        vertices_coarse=out.hand_vertices_coarse,
        keypoints_coarse=out.hand_keypoints_coarse,
        contact_logits=bounded_contact(out.hand_contact_logits, out.hand_touch_logits),
        params=out.hand_params,
        rotation=out.hand_rotation,
        presence_logits=out.hand_presence_logits,
        touch_logits=out.hand_touch_logits,
    )


def bounded_contact(
    contact_logits: Float[Tensor, "B N"], touch_logits: Float[Tensor, " B"]
) -> Float[Tensor, "B N"]:
    """Per-vertex contact logits bounded by the touch logit (in probabilities alike: sigmoid
    is monotonic), so no vertex is likelier in contact than the touch itself.

    Example:
        >>> bounded_contact(torch.tensor([[2.0, -1.0]]), torch.tensor([0.5]))
        tensor([[ 0.5000, -1.0000]])
    """
    return torch.minimum(contact_logits, touch_logits[:, None])


def mirror_hand(hand: HandPrediction, mirror: MirrorMaps) -> HandPrediction:
    """The other side's hand: reflected, re-indexed, its parameters mirrored.

    Right -> left uses ``mirror.hand_right_to_left``; left -> right its inverse. Mirroring
    twice gives the hand back.
    """
    device = hand.vertices.device
    if hand.side == "right":
        source_of = mirror.hand_left_to_right.to(device)  # left vertex k <- right vertex
        side = "left"
    else:
        source_of = mirror.hand_right_to_left.to(device)
        side = "right"
    params = hand.params
    sign = mirror.hand_articulation_sign
    articulation = params.articulation
    if articulation is not None:
        # backends without a mirror rule for their pose latent get none (vertices stay exact)
        articulation = None if sign is None else articulation * sign.to(articulation)
    finger_pose = None if params.finger_pose is None else _reflect_rotvec(params.finger_pose)
    rotation = _reflect_rotation(hand.rotation)
    return HandPrediction(
        side=side,
        vertices=_reflect(hand.vertices[:, source_of]),
        keypoints=_reflect(hand.keypoints),
        vertices_upsampled=_reflect(hand.vertices_upsampled[:, source_of]),
        vertices_coarse=_reflect(hand.vertices_coarse),
        keypoints_coarse=_reflect(hand.keypoints_coarse),
        contact_logits=hand.contact_logits[:, source_of],
        params=HandParams(
            global_orient=roma.rotmat_to_rotvec(rotation),
            transl=_reflect(params.transl),
            finger_pose=finger_pose,
            articulation=articulation,
            shape=params.shape,
        ),
        rotation=rotation,
        presence_logits=hand.presence_logits,
        touch_logits=hand.touch_logits,
    )


def predict_both_hands(net: DiceNet, images: Float[Tensor, "B 3 H W"]) -> DicePrediction:
    """Face, right and left hand of each crop from one pass over ``[images, flip(images)]``.

    Call it with the network in eval mode (in training mode masking, dropout and batch
    statistics differ between the two halves and the mirror property does not hold).
    """
    batch = images.shape[0]
    out = net(torch.cat([images, images.flip(-1)]))
    direct, flipped = _take(out, slice(0, batch)), _take(out, slice(batch, 2 * batch))
    mirror = net.sampling.mirror
    sym = _FaceSymmetry(mirror, images.device)
    rotation = roma.special_procrustes(
        0.5 * (direct.head_rotation + _reflect_rotation(flipped.head_rotation))
    )
    transl = 0.5 * (direct.head_params.transl + _reflect(flipped.head_params.transl))
    deformation = sym.vertices(direct.face_deformation, flipped.face_deformation)
    undeformed = sym.vertices(direct.face_vertices_undeformed, flipped.face_vertices_undeformed)
    face = FacePrediction(
        vertices=undeformed + deformation,
        vertices_undeformed=undeformed,
        deformation=deformation,
        vertices_upsampled=sym.vertices(
            direct.face_vertices_upsampled, flipped.face_vertices_upsampled
        ),
        contact_logits=bounded_contact(
            sym.vertices(direct.face_contact_logits, flipped.face_contact_logits, points=False),
            torch.maximum(direct.hand_touch_logits, flipped.hand_touch_logits),
        ),
        landmarks68=sym.landmarks68(direct.face_landmarks68, flipped.face_landmarks68),
        keypoints_coarse=sym.landmarks68(
            direct.face_keypoints_coarse, flipped.face_keypoints_coarse
        ),
        params=sym.params(direct.head_params, flipped.head_params, rotation, transl),
        rotation=rotation,
    )
    camera = 0.5 * (direct.camera + mirror_camera(flipped.camera))
    return DicePrediction(
        face=face,
        right=_right_hand(direct),
        left=mirror_hand(_right_hand(flipped), mirror),
        camera=camera,
    )
