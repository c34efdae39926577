"""The analytic renderer: landmark-driven piecewise-affine warp, stitched to a still background, with a
synthesised mouth interior. No trained weights; it is also the flow prior a neural renderer refines.

Mesh = the 478 face landmarks, two rings outside the face oval (hair, ears, neck) and fixed anchors on
the crop border. The inner ring moves rigidly with the head, the outer ring partly (less below the chin,
so the neck bends and the shoulders stay), the border not at all: the background and shoulders stay
where they are in the source and the paste-back has no seam.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
from scipy.spatial import Delaunay

from faceanim.face.analyze import SourceFace
from faceanim.face.model import LEFT_EYE_LOWER, LEFT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_UPPER, load_face_model
from faceanim.face.pose import HeadPose
from faceanim.motion.transfer import TargetFace
from faceanim.render.base import Overlay, Renderer, RenderOutput, identity_flow, mask_box
from faceanim.render.mesh_warp import mesh_flow
from faceanim.render.registry import register_renderer

UPPER_INNER_ARC = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LEFT_IRIS = np.arange(473, 478)
_RIGHT_IRIS = np.arange(468, 473)
_LEFT_EYE = np.array(LEFT_EYE_UPPER + LEFT_EYE_LOWER)
_RIGHT_EYE = np.array(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER)


@dataclass(frozen=True)
class AnalyticConfig:
    inner_ring: float = 1.25  # scale of the face oval around the face centre
    outer_ring: float = 1.75
    outer_follow: float = 0.5  # how much the outer ring follows the head
    neck_follow: float = 0.25  # the same below the chin
    border_points: int = 9  # anchors per crop side
    mouth_interior: bool = True
    ring_motion: Literal["oval", "rigid"] = "oval"  # rings follow the oval's 2D motion, or the rigid 3D head
    still_background: bool = True  # composite the warped person over the source's (inpainted) background


@dataclass(frozen=True)
class PreparedAnalytic:
    size: int
    source_points: np.ndarray  # (P, 2) all mesh vertices in the source crop
    triangles: np.ndarray
    inner_canonical: np.ndarray  # canonical coordinates of the inner ring
    outer_canonical: np.ndarray
    inner_anchor: np.ndarray  # the face-oval landmark each inner-ring point was pushed out from
    outer_anchor: np.ndarray
    outer_follow: np.ndarray  # (n_outer,)
    n_face: int
    n_inner: int
    n_outer: int
    grid: tuple[np.ndarray, np.ndarray]
    grid_xy: np.ndarray  # the same identity grid as one (size, size, 2) array
    cavity_colour: np.ndarray
    teeth_colour: np.ndarray
    tongue_colour: np.ndarray
    source_lip_open: float
    source_eye_open: np.ndarray
    foreground: np.ndarray  # (size, size) float32 weight of the moving person layer (1: mostly person)
    background: np.ndarray  # (size, size, 3) uint8: the source crop with the person inpainted away
    covered: np.ndarray  # (size, size) float32: where the person hid the background (soft)
    margin: np.ndarray  # (size, size) float32: the inpainted margin round it (faint hair the mask misses)


def _ring_members(anchors: np.ndarray, model) -> np.ndarray:
    """Positions, within the face-oval group, of the oval landmarks a ring was built from."""
    position = {int(idx): i for i, idx in enumerate(model.group("face_oval"))}
    return np.array([position[int(a)] for a in anchors], int)


def _ring(oval: np.ndarray, centre: np.ndarray, factor: float) -> np.ndarray:
    return centre + (oval - centre) * np.array([factor, factor, 1.0])


def _outside_image(source: SourceFace) -> np.ndarray:
    """uint8 mask (255) of the crop pixels that lie beyond the source image's edge."""
    h, w = source.image.shape[:2]
    corners = source.crop.to_crop(np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float))
    inside = np.zeros((source.crop.size,) * 2, np.uint8)
    cv2.fillConvexPoly(inside, np.round(corners * 16).astype(np.int32), 255, cv2.LINE_8, 4)
    return 255 - inside


@register_renderer("analytic")
class AnalyticRenderer(Renderer):
    name = "analytic"

    def __init__(self, config: AnalyticConfig = AnalyticConfig()) -> None:
        self.config = config

    def prepare(self, source: SourceFace) -> PreparedAnalytic:
        cfg = self.config
        model = load_face_model()
        size = source.crop.size
        lms = source.state.landmarks
        pose: HeadPose = source.state.pose
        oval = lms[model.group("face_oval")]
        centre = lms[:468].mean(0)
        margin = 2.0

        def inside(p: np.ndarray) -> np.ndarray:
            return np.all((p[:, :2] > margin) & (p[:, :2] < size - 1 - margin), axis=1)

        oval_idx = model.group("face_oval")
        inner = _ring(oval, centre, cfg.inner_ring)
        keep_inner = inside(inner)
        inner, inner_idx = inner[keep_inner], oval_idx[keep_inner]
        outer = _ring(oval, centre, cfg.outer_ring)
        keep_outer = inside(outer)
        outer, outer_idx = outer[keep_outer], oval_idx[keep_outer]
        chin_y = lms[152, 1]
        follow = np.where(outer[:, 1] > chin_y, cfg.neck_follow, cfg.outer_follow)
        t = np.linspace(0, size - 1, cfg.border_points)
        border = np.array(
            [(x, y) for x in t for y in (0.0, size - 1.0)] + [(x, y) for y in t[1:-1] for x in (0.0, size - 1.0)]
        )
        points = np.vstack([lms[:, :2], inner[:, :2], outer[:, :2], border])
        triangles = Delaunay(points).simplices.astype(np.int32)

        # colours of the synthesised mouth: a dark, lip-tinted cavity, a tongue hint and a teeth band
        lips = (source.masks.parts["lips"] > 0.5) & (source.masks.parts["mouth"] < 0.5)  # the lips, not the inside
        skin = (source.masks.face > 0.5) & ~lips
        img = source.crop_image.astype(np.float32) / 255.0
        lip_col = img[lips].mean(0) if lips.any() else np.array([0.6, 0.35, 0.35])
        skin_col = img[skin].mean(0) if skin.any() else np.array([0.8, 0.65, 0.55])
        grid = identity_flow(size)
        # the moving person's weight: 1 wherever a pixel is mostly person. Its colour already holds its own share
        # of background, so a softer weight would mix background in twice (a light rim round dark hair).
        fg = np.clip((source.masks.foreground.astype(np.float32) - 0.2) / 0.2, 0.0, 1.0)
        person = (fg > 0.02).astype(np.uint8)
        grow = max(3, size // 24) | 1  # keep the inpainting's boundary clear of semi-transparent hair
        hole = cv2.dilate(person * 255, np.ones((grow, grow), np.uint8))
        inpainted = cv2.GaussianBlur(cv2.erode(hole, np.ones((3, 3), np.uint8)).astype(np.float32) / 255.0, (0, 0), 1.0)
        covered = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 1.0)
        margin = np.clip(inpainted - covered, 0.0, 1.0)
        # the crop is black beyond the image's edge: fill that too, so it never bleeds into the background
        background = cv2.inpaint(source.crop_image, hole | _outside_image(source), 5, cv2.INPAINT_TELEA)
        return PreparedAnalytic(
            size=size,
            source_points=points,
            triangles=triangles,
            inner_canonical=pose.remove(inner),
            outer_canonical=pose.remove(outer),
            inner_anchor=inner_idx,
            outer_anchor=outer_idx,
            outer_follow=follow,
            n_face=len(lms),
            n_inner=len(inner),
            n_outer=len(outer),
            grid=(np.ascontiguousarray(grid[..., 0]), np.ascontiguousarray(grid[..., 1])),
            grid_xy=grid,
            cavity_colour=0.22 * lip_col + 0.03,
            tongue_colour=0.6 * lip_col,
            teeth_colour=np.clip(0.45 * skin_col.mean() + 0.45, 0.0, 0.92) * np.array([1.0, 0.96, 0.88]),
            source_lip_open=float(source.state.lip_open),
            source_eye_open=np.asarray(source.state.eye_open),
            foreground=fg,
            covered=covered,
            margin=margin,
            background=background,
        )

    def prepare_frame(self, previous: PreparedAnalytic, source: SourceFace) -> PreparedAnalytic:
        """The next frame of a source video: the mesh moves with the new landmarks (same rings, same
        triangles), while the person mask, inpainted background and mouth colours are the previous frame's —
        the crop follows the face, so in crop pixels they barely change (video-to-video re-prepares fully
        every so often)."""
        lms = source.state.landmarks
        model = load_face_model()
        oval = lms[model.group("face_oval")]
        centre = lms[:468].mean(0)
        inner = _ring(oval, centre, self.config.inner_ring)[_ring_members(previous.inner_anchor, model)]
        outer = _ring(oval, centre, self.config.outer_ring)[_ring_members(previous.outer_anchor, model)]
        border = previous.source_points[previous.n_face + previous.n_inner + previous.n_outer:]
        pose: HeadPose = source.state.pose
        return replace(
            previous,
            source_points=np.vstack([lms[:, :2], inner[:, :2], outer[:, :2], border]),
            inner_canonical=pose.remove(inner),
            outer_canonical=pose.remove(outer),
            source_lip_open=float(source.state.lip_open),
            source_eye_open=np.asarray(source.state.eye_open),
        )

    def target_points(self, prepared: PreparedAnalytic, target: TargetFace) -> tuple[np.ndarray, np.ndarray]:
        """All mesh vertices after the motion, and their depth (for painting order)."""
        head = HeadPose(rotation=target.rotation, translation=target.translation, scale=target.scale)
        n_f, n_i, n_o = prepared.n_face, prepared.n_inner, prepared.n_outer
        src = prepared.source_points
        inner = head.apply(prepared.inner_canonical)
        outer_src = src[n_f + n_i : n_f + n_i + n_o]
        if self.config.ring_motion == "oval":
            # each ring point moves like the face-oval point it was pushed out from: no folds at the silhouette
            moved = target.landmarks[:, :2] - src[:n_f]
            inner[:, :2] = src[n_f : n_f + n_i] + moved[prepared.inner_anchor]
            outer_moved = outer_src + moved[prepared.outer_anchor]
        else:
            outer_moved = head.apply(prepared.outer_canonical)[:, :2]
        outer = outer_src + prepared.outer_follow[:, None] * (outer_moved - outer_src)
        face = self._irises_inside_lids(prepared, target)
        pts = np.vstack([face, inner[:, :2], outer, src[n_f + n_i + n_o :]])
        far = float(np.abs(target.landmarks[:, 2]).max() + target.scale * 10.0)
        depth = np.concatenate(
            [target.landmarks[:, 2], inner[:, 2] + 0.5 * far, np.full(len(pts) - n_f - n_i, far)]
        )
        return pts, depth[prepared.triangles].mean(1)

    @staticmethod
    def _irises_inside_lids(prepared: PreparedAnalytic, target: TargetFace) -> np.ndarray:
        """Squeeze each iris toward its eye's centre line as the lids close, so iris pixels never fold out
        over the eyelids."""
        pts = target.landmarks[:, :2].copy()
        for e, (iris, contour) in enumerate(((_LEFT_IRIS, _LEFT_EYE), (_RIGHT_IRIS, _RIGHT_EYE))):
            k = min(1.0, float(target.eye_open[e]) / max(float(prepared.source_eye_open[e]), 1e-3))
            if k < 1.0:
                centre_y = pts[contour, 1].mean()
                pts[iris, 1] = centre_y + (pts[iris, 1] - centre_y) * k
        return pts

    def render(self, prepared: PreparedAnalytic, target: TargetFace) -> RenderOutput:
        """Backward flow of the mesh warp over a still background, plus mouth and uncovered-background layers."""
        pts, tri_depth = self.target_points(prepared, target)
        flow = mesh_flow(pts, prepared.source_points, prepared.triangles, tri_depth, prepared.size, prepared.grid)
        weight = background = None
        if self.config.still_background:
            weight, background = self.still_background(prepared, flow)
        mouth = self.mouth_interior(prepared, target) if self.config.mouth_interior else None
        return RenderOutput(flow=flow, overlay=mouth, flow_weight=weight, background=background)

    @staticmethod
    def still_background(prepared: PreparedAnalytic, flow: np.ndarray) -> tuple[np.ndarray, Overlay | None]:
        """Only the person moves: the warped person mask weights the flow-resampled pixels over the source in
        place, and where the moving person uncovered background, the inpainted background shows beneath it.

        The two are blended by colour: blending the flow itself towards the identity would sample pixels
        in between, the background just inside a moving silhouette (a bright rim round dark hair).
        """
        weight = cv2.remap(prepared.foreground, flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        displacement = flow - prepared.grid_xy
        shift = cv2.magnitude(displacement[..., 0], displacement[..., 1])
        # uncovered: where the person was, and actually moving (the person layer covers what it still hides). Faint
        # hair just outside the mask would stay behind as the head moves away: beyond ~2 px the margin goes too.
        revealed = (prepared.covered + prepared.margin * np.clip(shift * 0.5 - 1.0, 0.0, 1.0)) * np.clip(
            shift - 0.25, 0.0, 1.0
        )
        revealed[(revealed < 0.02) | (weight > 0.999)] = 0.0
        box = mask_box(revealed)
        if box is None:
            return weight, None
        x0, y0, x1, y1 = box
        return weight, Overlay.from_straight(prepared.background[y0:y1, x0:x1], revealed[y0:y1, x0:x1], box)

    def mouth_interior(self, prepared: PreparedAnalytic, target: TargetFace) -> Overlay | None:
        """RGBA overlay of a mouth cavity where the target opens wider than the source (no pixels to copy)."""
        opening = target.lip_open - prepared.source_lip_open
        strength = float(np.clip((opening - 0.02) / 0.08, 0.0, 1.0))
        if strength <= 0.0:
            return None
        model = load_face_model()
        size = prepared.size
        lms = target.landmarks[:, :2]
        inner = lms[model.group("inner_lips")]
        x0, y0 = np.floor(inner.min(0)).astype(int) - 4
        x1, y1 = np.ceil(inner.max(0)).astype(int) + 5
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
        if x1 <= x0 or y1 <= y0:
            return None
        off = np.array([x0, y0])
        shape = (y1 - y0, x1 - x0)
        cavity = np.zeros(shape, np.uint8)
        cv2.fillPoly(cavity, [np.round((inner - off) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        cavity = cv2.erode(cavity, np.ones((2, 2), np.uint8))
        gap = float(np.linalg.norm(lms[13] - lms[14]))
        arc = lms[list(UPPER_INNER_ARC)] - off
        teeth_poly = np.vstack([arc, arc[::-1] + np.array([0.0, max(1.0, 0.28 * gap)])])
        cav = cv2.GaussianBlur(cavity.astype(np.float32) / 255.0, (0, 0), 0.8)
        ys = np.arange(shape[0], dtype=np.float32)[:, None]
        top = lms[13, 1] - y0  # upper inner lip, middle
        rel = np.clip((ys - top) / max(gap, 1.0), 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
        # a dark throat in the middle, a hint of tongue low in the mouth
        throat = 1.0 - 0.45 * np.exp(-(((rel - 0.5) / 0.35) ** 2))
        tongue = np.clip((rel - 0.65) / 0.35, 0.0, 1.0) ** 2 * 0.6
        rgb = prepared.cavity_colour[None, None, :] * throat[..., None]
        rgb = rgb * (1 - tongue[..., None]) + prepared.tongue_colour[None, None, :] * tongue[..., None]
        if prepared.source_lip_open < 0.08:
            # closed source: no teeth to stretch, so draw an upper-teeth band under the upper lip
            teeth = np.zeros(shape, np.uint8)
            cv2.fillPoly(teeth, [np.round(teeth_poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
            tth = cv2.GaussianBlur(teeth.astype(np.float32) / 255.0, (0, 0), 1.0) * cav * 0.85
            rgb = rgb * (1 - tth[..., None]) + prepared.teeth_colour[None, None, :] * tth[..., None]
            ramp = np.ones_like(rel)
        else:
            # open source: its own teeth stretch down from the upper lip; the cavity fills in below them
            ramp = np.clip((rel - 0.2) / 0.3, 0.0, 1.0)
        return Overlay.from_straight(rgb * 255.0, cav * strength * ramp, (int(x0), int(y0), int(x1), int(y1)))


# Ablations are configurations of the same renderer, not copies of it.
register_renderer("analytic-rigid-rings")(lambda: AnalyticRenderer(AnalyticConfig(ring_motion="rigid")))
register_renderer("analytic-no-background")(lambda: AnalyticRenderer(AnalyticConfig(still_background=False)))
