"""``Animator``: prepare a portrait once, then animate it frame by frame (the Python API)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from faceanim.errors import NoFaceError
from faceanim.face.analyze import FaceState, SourceFace, prepare_source_face, select_face
from faceanim.face.crop import CropConfig
from faceanim.face.detect import FaceLandmarker
from faceanim.face.masks import Segmenter
from faceanim.motion.transfer import TargetFace, TransferConfig, transfer_motion
from faceanim.motion.types import Motion
from faceanim.render.base import Renderer, RenderOutput, render_crop
from faceanim.render.paste import PasteConfig, PastePlan, paste_back, plan_paste
from faceanim.render.registry import create_renderer, default_renderer


@dataclass(frozen=True)
class AnimatorConfig:
    renderer: str | None = None  # None: the default for this crop size (render.registry.default_renderer)
    crop: CropConfig = field(default_factory=CropConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    paste: PasteConfig = field(default_factory=PasteConfig)
    crop_only: bool = False  # return the aligned crop instead of the pasted-back full frame

    def __post_init__(self) -> None:
        if self.renderer is None:  # resolved once, so every stage (and the provenance mark) sees one name
            object.__setattr__(self, "renderer", default_renderer(self.crop.size))


@dataclass(frozen=True)
class PreparedFace:
    """One source face, with everything the renderer and paste-back precomputed."""

    source: SourceFace
    renderer_state: object
    paste: PastePlan


@dataclass(frozen=True)
class FrameResult:
    """One animated frame: ``image`` is None until :meth:`Animator.compose` pastes the outputs back."""

    image: np.ndarray | None  # the full frame (or the crop with ``crop_only``)
    targets: list[TargetFace]
    outputs: list[RenderOutput]


class Animator:
    """Animate one portrait (one face, or every face of a group photo) with any driver's motion.

    >>> anim = Animator.prepare(image)                        # analyse the source once
    >>> out = anim.animate(motion, reference=first_motion).image  # per frame, from any driver's Motion
    >>> out = anim.animate_frame(webcam_frame).image            # or straight from live frames
    """

    def __init__(self, faces: list[PreparedFace], renderer: Renderer, config: AnimatorConfig) -> None:
        if not faces:
            raise NoFaceError("no face to animate")
        self.faces = faces
        self.renderer = renderer
        self.config = config
        self._live: Any = None  # the Session behind animate_frame
        self._frame_index = 0
        self._lip_floor_reference: Motion | None = None
        self._driver_min_lip = 0.0

    @classmethod
    def prepare(
        cls,
        image: np.ndarray,
        config: AnimatorConfig | None = None,
        face_index: int | Literal["all"] = 0,
        path: str | None = None,
        renderer: Renderer | None = None,
    ) -> Animator:
        """Detect, crop, describe and mask the source face(s) and let the renderer precompute."""
        config = config or AnimatorConfig()
        renderer = renderer or create_renderer(config.renderer)
        with FaceLandmarker(max_faces=8 if face_index == "all" else 4) as lm, Segmenter() as seg:
            detected = lm.detect(image)
            chosen = detected if face_index == "all" else [select_face(detected, face_index, path)]
            if not chosen:
                raise NoFaceError("no face found", path=path)
            faces = []
            for det in chosen:
                src = prepare_source_face(image, det, seg, config.crop)
                faces.append(PreparedFace(src, renderer.prepare(src), plan_paste(src, config.paste)))
        return cls(faces, renderer, config)

    @property
    def source(self) -> SourceFace:
        """The (first) source face."""
        return self.faces[0].source

    def image_reference(self, driving: Motion) -> Motion:
        """Reference for a single driving image: deltas are taken against the source (absolute expression and
        rotation, eye/lip ratios), while the source keeps its own framing (translation and scale)."""
        s: FaceState = self.source.state
        return replace(
            Motion.from_state(s), translation=driving.translation, scale=driving.scale
        )

    def targets(self, motion: Motion, reference: Motion, driver: object | None = None) -> list[TargetFace]:
        """Target landmarks of every face; ``driver``: the driver's robust reference statistics (from the session)."""
        if reference is not self._lip_floor_reference:  # a new driver: restart its running lip minimum
            self._lip_floor_reference = reference
            self._driver_min_lip = reference.lip_open
        self._driver_min_lip = min(self._driver_min_lip, motion.lip_open)
        stats = self._driver_min_lip if driver is None else driver  # the running lip minimum when no statistics
        return [transfer_motion(f.source.state, motion, reference, self.config.transfer, stats) for f in self.faces]

    def animate(self, motion: Motion, reference: Motion, driver: object | None = None) -> FrameResult:
        """One output frame for one driving motion (``reference``: the driver's first frame)."""
        return self.compose(self.render(motion, reference, driver))

    def render(self, motion: Motion, reference: Motion, driver: object | None = None) -> FrameResult:
        """Motion transfer and rendering in crop space, without paste-back (``image`` stays None), so that
        a pipeline can paste one frame back while it renders the next."""
        targets = self.targets(motion, reference, driver)
        outputs = [self.renderer.render(f.renderer_state, t) for f, t in zip(self.faces, targets, strict=True)]
        return FrameResult(None, targets, outputs)

    def compose(self, rendered: FrameResult) -> FrameResult:
        """Paste the rendered crops back into the source (or return the crop with ``crop_only``)."""
        outputs = rendered.outputs
        if self.config.crop_only:
            return replace(rendered, image=render_crop(self.faces[0].source, outputs[0]))
        image = None
        for f, out in zip(self.faces, outputs, strict=True):
            image = paste_back(f.source, out, f.paste, base=image)
        assert image is not None
        return replace(rendered, image=image)

    def animate_frame(self, frame: np.ndarray, time: float | None = None) -> FrameResult:
        """Drive with a live frame (webcam, stream): tracks the driver's face; its first face is the reference.

        A live :class:`~faceanim.pipeline.session.Session` (causal smoothing, no delay) does the work; while no
        face has been seen yet the source itself is returned.
        """
        from faceanim.pipeline.session import Session, SessionConfig

        if self._live is None:
            self._live = Session(self, SessionConfig(live=True))
            self._frame_index = 0
        t = float(self._frame_index) / 30.0 if time is None else time
        self._frame_index += 1
        (out,) = self._live.push_image(frame, t)
        return out.result if out.result is not None else FrameResult(out.image, [], [])

    def close(self) -> None:
        """Release the live session (if :meth:`animate_frame` was used)."""
        if self._live is not None:
            self._live.close()
            self._live = None
        self._lip_floor_reference = None

    def __enter__(self) -> Animator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def neutral(self) -> np.ndarray:
        """The source image (or crop) itself: what is shown while the driver shows no face."""
        return self.source.crop_image if self.config.crop_only else self.source.image
