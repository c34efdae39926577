"""The trivial baseline: every output frame is the source unchanged (the floor every renderer must beat)."""

from __future__ import annotations

from faceanim.face.analyze import SourceFace
from faceanim.motion.transfer import TargetFace
from faceanim.render.base import Renderer, RenderOutput, identity_flow
from faceanim.render.registry import register_renderer


@register_renderer("identity")
class IdentityRenderer(Renderer):
    name = "identity"

    def prepare(self, source: SourceFace) -> RenderOutput:
        return RenderOutput(flow=identity_flow(source.crop.size))

    def render(self, prepared: RenderOutput, target: TargetFace) -> RenderOutput:
        return prepared
