"""Write ``docs/demo.png`` for the README: the public-domain astronaut driven by bundled templates.

Reproduce with ``python scripts/make_readme_figure.py``.
"""

from __future__ import annotations

from pathlib import Path

from skimage import data

from faceanim.eval.report import contact_sheet, save_png
from faceanim.motion.templates import procedural_template
from faceanim.pipeline.animator import Animator, AnimatorConfig

OUT = Path(__file__).resolve().parents[1] / "docs" / "demo.png"


def main() -> None:
    anim = Animator.prepare(data.astronaut(), AnimatorConfig())
    x0, y0, x1, y1 = anim.source.crop.image_box(anim.source.image.shape)  # the face's part of the full frame
    rows = []
    for name, picks in (("turn", (0, 19, 56)), ("talk", (0, 4, 10)), ("blink", (0, 3, 5)), ("smile", (0, 25, 37))):
        tpl = procedural_template(name)
        ref = tpl.motions[0]
        frames = []
        for i in picks:
            frames.append(anim.animate(tpl.motions[i], ref).image[y0:y1, x0:x1])
        rows.append(frames)
    sheet = contact_sheet([list(r) for r in zip(*rows, strict=True)], ["turn", "talk", "blink", "smile"], tile=200)
    save_png(OUT, sheet)
    print(f"wrote {OUT} {sheet.shape}")


if __name__ == "__main__":
    main()
