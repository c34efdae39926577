"""Run a protocol over clips and renderers; write JSON, a Markdown table and contact sheets."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from faceanim.errors import FaceAnimError
from faceanim.eval import metrics, report
from faceanim.eval.cross_identity import evaluate_pair
from faceanim.eval.measure import FrameMeasurer
from faceanim.eval.same_identity import ClipResult, EvalSettings, evaluate_clip
from faceanim.media.atomic import atomic_output

SAME_ID_COLUMNS = ["renderer", "clips", "psnr", "ssim", "l1", "akd", "apd", "aed", "eye_error", "lip_error",
                   "jitter_ratio", "background", "missing_faces"]
CROSS_ID_COLUMNS = ["renderer", "pairs", "apd_rel", "aed_rel", "eye_corr", "lip_corr", "background", "csim",
                    "missing_faces"]
NOT_MEASURED = {
    "lpips": "not measured: no dependency ships LPIPS weights offline (and none are downloaded)",
    "fid": "not measured: no dependency ships Inception weights offline (and none are downloaded)",
    "csim": "not measured: no offline face-embedding model is installed",
}


PROXIES = {
    "akd": "mediapipe 478-point landmarks at 256 px (the papers use other detectors)",
    "apd": "yaw/pitch/roll from faceanim's own fit of mediapipe landmarks to its canonical face",
    "aed": "L1 of canonical-space landmarks / inter-ocular distance, a proxy for 3DMM expression distance",
    "background": "mean abs change of background pixels vs the first frame (0-255), in the spirit of BCI",
    "jitter_ratio": "landmark acceleration of the output / of the ground truth (1 = as steady as real video)",
    "apd_rel, aed_rel": "cross-id: the output's change from its first frame vs the driver's change",
}


def default_clips(data: Path) -> list[Path]:
    """Every clip of the sample data's ``talking/`` and ``driving/`` folders."""
    clips = sorted((data / "talking").glob("*.mp4")) + sorted((data / "driving").glob("*.mp4"))
    if not clips:
        raise FaceAnimError("no clips found (pass --clips or --data)", path=data)
    return clips


def default_portraits(data: Path) -> list[Path]:
    """Single-face portraits of the sample data (its MANIFEST marks multi-face and non-human ones)."""
    manifest = data / "MANIFEST.md"
    skip: set[str] = set()
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if line.startswith("| portraits/") and ("MULTI-FACE" in line or "NON-HUMAN" in line):
                skip.add(line.split("|")[1].strip().split("/", 1)[1])
    found = sorted(p for p in (data / "portraits").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    portraits = [p for p in found if p.name not in skip]
    if not portraits:
        raise FaceAnimError("no portraits found (pass --portraits or --data)", path=data)
    return portraits


def _aggregate(results: list[ClipResult]) -> dict[str, dict[str, float]]:
    keys = sorted({k for r in results for k in r.metrics})
    return {k: metrics.summarize([r.metrics.get(k, np.nan) for r in results]) for k in keys}


def run_protocol(
    protocol: Literal["same-id", "cross-id"],
    renderers: Sequence[str],
    clips: Sequence[Path],
    out_dir: Path,
    portraits: Sequence[Path] = (),
    settings: EvalSettings = EvalSettings(),
    progress: bool = True,
) -> dict:
    """Evaluate every renderer on the same inputs in one run; returns what ``results.json`` holds."""
    if not clips:
        raise FaceAnimError("no clips to evaluate")
    if protocol == "cross-id" and not portraits:
        raise FaceAnimError("cross-id needs portraits")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(p, c) for p in portraits for c in clips] if protocol == "cross-id" else [(None, c) for c in clips]
    per_frame = settings.limit or 100
    bar = tqdm(total=len(renderers) * len(jobs) * per_frame, disable=not progress, unit="frame", desc=protocol)
    summary: dict = {"protocol": protocol, "settings": asdict(settings), "renderers": {}, "not_measured": NOT_MEASURED,
                     "proxies": PROXIES}
    rows = []
    with FrameMeasurer() as measurer:
        for name in renderers:
            results: list[ClipResult] = []
            errors: list[str] = []
            started = time.perf_counter()
            for portrait, clip in jobs:
                try:
                    if portrait is None:
                        res = evaluate_clip(clip, name, settings, measurer, bar.update)
                    else:
                        res = evaluate_pair(portrait, clip, name, settings, measurer, bar.update)
                except FaceAnimError as exc:
                    errors.append(str(exc))
                    continue
                results.append(res)
            agg = _aggregate(results)
            summary["renderers"][name] = {
                "aggregate": agg,
                "clips": [{"clip": r.clip, "frames": r.frames, "missing_output_faces": r.missing_output_faces,
                           **r.metrics} for r in results],
                "errors": errors,
                "seconds": time.perf_counter() - started,
            }
            row = {"renderer": name, ("pairs" if protocol == "cross-id" else "clips"): len(results),
                   "missing_faces": sum(r.missing_output_faces for r in results)}
            row.update({k: v["mean"] for k, v in agg.items()})
            rows.append(row)
            sheet_rows = [row_imgs for r in results[:6] for row_imgs in r.sheet_rows[:2]]
            if sheet_rows:
                labels = ["source", "driving = ground truth", name] if protocol == "same-id" else \
                    ["source", "driving", name]
                report.save_png(out_dir / f"contact_{protocol}_{name}.png", report.contact_sheet(sheet_rows, labels))
    bar.close()
    columns = SAME_ID_COLUMNS if protocol == "same-id" else CROSS_ID_COLUMNS
    table = report.markdown_table(rows, columns)
    summary["table"] = table
    report.write_json(out_dir / "results.json", summary)
    notes = [f"- {k}: {v}" for k, v in NOT_MEASURED.items()] + [f"- {k} (proxy): {v}" for k, v in PROXIES.items()]
    with atomic_output(out_dir / "results.md") as tmp:
        tmp.write_text(f"# faceanim eval: {protocol}\n\n{table}\n\n" + "\n".join(notes) + "\n")
    return summary
