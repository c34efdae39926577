"""The README's before/after sheet: ``analytic`` vs ``mobileportrait`` on two public-domain portraits that
dependencies ship — scikit-image's astronaut (Eileen Collins, NASA; a smile that shows teeth) and
matplotlib's Grace Hopper (U.S. Navy; a closed mouth) — driven by the bundled talk and smile motions
(no third-party media).

    python -m faceanim.train.figures docs/mobileportrait_before_after.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from faceanim.eval.report import contact_sheet, save_png
from faceanim.motion.templates import procedural_template
from faceanim.pipeline.animator import Animator, AnimatorConfig


def public_domain_portraits() -> dict[str, np.ndarray]:
    """Portraits that ship inside dependencies and are in the public domain (works of U.S. federal employees)."""
    from matplotlib import cbook
    from skimage import data

    from faceanim.media import read_image

    return {"astronaut": np.ascontiguousarray(data.astronaut()),
            "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))}


def before_after(out: Path, renderers: tuple[str, ...] = ("analytic", "mobileportrait")) -> Path:
    rows = []
    for image in public_domain_portraits().values():
        anims = [Animator.prepare(image, AnimatorConfig(renderer=r, crop_only=True)) for r in renderers]
        for name in ("talk", "smile"):
            motions = procedural_template(name).motions
            peak = motions[int(np.argmax([m.lip_open + (m.expression[:, 0].std() if name == "smile" else 0.0)
                                          for m in motions]))]
            rows.append([anims[0].source.crop_image, *(a.animate(peak, motions[0]).image for a in anims)])
    save_png(out, contact_sheet(rows, ["source (public domain)", *renderers], tile=256))
    return out


if __name__ == "__main__":
    print(before_after(Path(sys.argv[1] if len(sys.argv) > 1 else "out/mobileportrait_before_after.png")))
