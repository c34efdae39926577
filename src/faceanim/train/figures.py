"""The README's before/after sheet: ``analytic`` vs ``mobileportrait`` on a public-domain portrait
(scikit-image's astronaut) driven by the bundled talk and smile motions (no third-party media).

    python -m faceanim.train.figures docs/mobileportrait_before_after.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from faceanim.eval.report import contact_sheet, save_png
from faceanim.motion.templates import procedural_template
from faceanim.pipeline.animator import Animator, AnimatorConfig


def before_after(out: Path, renderers: tuple[str, ...] = ("analytic", "mobileportrait")) -> Path:
    from skimage import data

    image = np.ascontiguousarray(data.astronaut())
    rows = []
    for name in ("talk", "smile"):
        motions = procedural_template(name).motions
        peak = motions[int(np.argmax([m.lip_open + (m.expression[:, 0].std() if name == "smile" else 0.0)
                                      for m in motions]))]
        row = []
        for r in renderers:
            anim = Animator.prepare(image, AnimatorConfig(renderer=r, crop_only=True))
            if not row:
                row.append(anim.source.crop_image)
            row.append(anim.animate(peak, motions[0]).image)
        rows.append(row)
    save_png(out, contact_sheet(rows, ["source (public domain)", *renderers], tile=256))
    return out


if __name__ == "__main__":
    print(before_after(Path(sys.argv[1] if len(sys.argv) > 1 else "out/mobileportrait_before_after.png")))
