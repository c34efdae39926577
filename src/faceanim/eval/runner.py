"""Run a protocol over clips and renderers; write JSON, a Markdown report and contact sheets."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from faceanim import __version__
from faceanim.errors import FaceAnimError
from faceanim.eval import metrics, report
from faceanim.eval.cross_identity import evaluate_pair, pair_name
from faceanim.eval.data import CLIP_FOLDERS, video_files
from faceanim.eval.frames import EvalSettings
from faceanim.eval.identity import MISSING as CSIM_MISSING
from faceanim.eval.measure import FrameMeasurer
from faceanim.eval.same_identity import ClipResult, evaluate_clip
from faceanim.media.atomic import atomic_output
from faceanim.media.kinds import is_image_path

SAME_ID_COLUMNS = ["renderer", "clips", "psnr", "ssim", "l1", "mouth_psnr", "mouth_ssim", "sharpness", "csim",
                   "csim_distance", "akd", "apd", "aed", "eye_error", "lip_error", "jitter_ratio", "background",
                   "missing_faces"]
CROSS_ID_COLUMNS = ["renderer", "pairs", "apd_rel", "aed_rel", "eye_corr", "lip_corr", "csim", "csim_distance",
                    "background", "missing_faces"]
MEDIAN_COLUMNS = ("sharpness",)  # ratios: the table shows the median over clips, not the mean
CSIM_COLUMNS = ("csim", "csim_distance", "csim_same_person")
# metric -> True if higher is better; per-clip win counts are taken over these
WIN_METRICS = {
    "same-id": {"psnr": True, "ssim": True, "mouth_psnr": True, "mouth_ssim": True, "csim": True, "akd": False,
                "aed": False, "eye_error": False, "lip_error": False},
    "cross-id": {"lip_corr": True, "eye_corr": True, "csim": True, "apd_rel": False, "aed_rel": False},
}
WEAKEST, WEAKEST_BY = 5, ("lip_corr", "eye_corr")  # cross-id: the report names the weakest pairs
SHEET_JOBS, SHEET_ROWS = 6, 2  # the contact sheet shows this many jobs × rows; nothing else is kept
NOT_MEASURED = {
    "lpips": "not measured: no dependency ships LPIPS weights offline (and none are downloaded)",
    "fid": "not measured: no dependency ships Inception weights offline (and none are downloaded)",
}
DEFINITIONS = {
    "frames": "same-id: frame 0 (the source itself) is never scored; every `every`-th later frame is, up to "
              "`limit`. All frames are animated through the pipeline's Session with the CLI's default smoothing",
    "psnr, ssim, l1": "on the aligned 256×256 crop, only over pixels inside the clip's frame: the crop's "
                      "validity mask is the image's own footprint warped into the crop (padding and its "
                      "interpolated rim excluded); SSIM averages its 7×7 map over windows wholly inside the mask",
    "mouth_psnr, mouth_ssim": "the same on a square of 1.5× the ground truth's lip extent around its lips",
    "sharpness": "Laplacian variance of the output's crop over the ground truth's (valid pixels); per clip the "
                 "median over frames, in the table the median over clips (< 1: blurrier than the real video)",
    "csim": "cosine similarity of dlib's 128-D ResNet face embeddings (face-recognition-models), same-id: output "
            "vs ground truth, cross-id: output vs source portrait; csim_distance: their Euclidean distance "
            "(dlib's same-person threshold is 0.6); on `csim_frames` evenly spaced frames per clip",
    "akd": "mediapipe 478-point landmarks at 256 px (the papers use other detectors)",
    "apd": "yaw/pitch/roll from faceanim's own fit of mediapipe landmarks to its canonical face",
    "aed": "L1 of canonical-space landmarks / inter-ocular distance, a proxy for 3DMM expression distance",
    "background": "mean abs change of background pixels vs the first scored frame (0-255), in the spirit of BCI",
    "jitter_ratio": "landmark acceleration of the output / of the ground truth (1 = as steady as real video)",
    "apd_rel, aed_rel": "cross-id: the output's change from its first frame vs the driver's change",
    "eye_corr, lip_corr": "cross-id: Pearson correlation of the output's eye/lip openness with the driver's, both "
                          "re-measured from scratch",
}


def default_clips(data: Path) -> list[Path]:
    """Every video of the sample data's ``talking/`` and ``driving/`` folders (any kind faceanim reads)."""
    clips = [p for folder in CLIP_FOLDERS for p in video_files(data / folder)]
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
    folder = data / "portraits"
    found = sorted(p for p in folder.iterdir() if is_image_path(p)) if folder.is_dir() else []
    portraits = [p for p in found if p.name not in skip]
    if not portraits:
        raise FaceAnimError("no portraits found (pass --portraits or --data)", path=data)
    return portraits


def _aggregate(results: list[ClipResult]) -> dict[str, dict[str, float]]:
    keys = sorted({k for r in results for k in r.metrics})
    return {k: metrics.summarize([r.metrics.get(k, np.nan) for r in results]) for k in keys}


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and bool(np.isfinite(x))


def win_counts(summary: dict, protocol: str | None = None) -> list[dict[str, object]]:
    """Per-clip wins of each renderer over each renderer listed before it, per metric: ``"wins/clips"``.

    Works on any ``results.json`` summary (older ones simply lack some metrics). Ties are no win.
    """
    protocol = protocol or summary["protocol"]
    names = list(summary["renderers"])
    per = {n: {c["clip"]: c for c in summary["renderers"][n]["clips"]} for n in names}
    rows = []
    for i, a in enumerate(names):
        for b in names[:i]:
            row: dict[str, object] = {"renderer": a, "vs": b}
            for metric, higher in WIN_METRICS[protocol].items():
                both = [(per[a][c].get(metric), per[b][c].get(metric)) for c in per[a] if c in per[b]]
                both = [(x, y) for x, y in both if _finite(x) and _finite(y)]
                if both:
                    wins = sum((x > y) if higher else (x < y) for x, y in both)
                    row[metric] = f"{wins}/{len(both)}"
            rows.append(row)
    return rows


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, text=True,
                             capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def run_protocol(
    protocol: Literal["same-id", "cross-id"],
    renderers: Sequence[str],
    clips: Sequence[Path],
    out_dir: Path,
    portraits: Sequence[Path] = (),
    settings: EvalSettings = EvalSettings(),
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Evaluate every renderer on the same inputs in one run; returns what ``results.json`` holds.

    Jobs (clips, or portrait × clip pairs) run in order, every renderer on each job before the next, so a
    job's ground-truth measures are reused across renderers. ``command``: the command line that reproduces
    the run, recorded in the report.
    """
    if not clips:
        raise FaceAnimError("no clips to evaluate")
    if protocol == "cross-id" and not portraits:
        raise FaceAnimError("cross-id needs portraits")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(p, c) for p in portraits for c in clips] if protocol == "cross-id" else [(None, c) for c in clips]
    bar = tqdm(total=len(renderers) * len(jobs) * (settings.limit or 100), disable=not progress, unit="frame",
               desc=protocol)
    results: dict[str, list[ClipResult]] = {n: [] for n in renderers}
    errors: dict[str, list[str]] = {n: [] for n in renderers}
    seconds = dict.fromkeys(renderers, 0.0)
    sheets: dict[str, list[list[np.ndarray]]] = {n: [] for n in renderers}
    with FrameMeasurer() as measurer:
        csim_ok = measurer.embedder is not None
        for j, (portrait, clip) in enumerate(jobs):
            sheet_frames = min(settings.sheet_frames, SHEET_ROWS) if j < SHEET_JOBS else 0
            job_settings = replace(settings, sheet_frames=sheet_frames)
            for name in renderers:
                started = time.perf_counter()
                try:
                    if portrait is None:
                        res = evaluate_clip(clip, name, job_settings, measurer, bar.update)
                    else:
                        res = evaluate_pair(portrait, clip, name, job_settings, measurer, bar.update)
                except FaceAnimError as exc:
                    errors[name].append(str(exc))
                    continue
                finally:
                    seconds[name] += time.perf_counter() - started
                sheets[name] += res.sheet_rows
                results[name].append(replace(res, sheet_rows=[]))  # keep only what the sheet shows
            measurer.clear_cache()
    bar.close()
    summary: dict = {
        "protocol": protocol, "command": command, "version": __version__, "commit": _git_commit(),
        "settings": asdict(settings), "renderers": {}, "not_measured": dict(NOT_MEASURED),
        "definitions": DEFINITIONS, "warnings": [],
        "inputs": [pair_name(p, c) if p is not None else str(c) for p, c in jobs],
    }
    if not csim_ok:
        summary["not_measured"]["csim"] = CSIM_MISSING
        summary["warnings"].append(CSIM_MISSING)
    rows = []
    for name in renderers:
        agg = _aggregate(results[name])
        summary["renderers"][name] = {
            "aggregate": agg,
            "clips": [{"clip": r.clip, "frames": r.frames, "missing_output_faces": r.missing_output_faces,
                       **r.metrics} for r in results[name]],
            "errors": errors[name],
            "seconds": seconds[name],
        }
        row: dict[str, object] = {"renderer": name, ("pairs" if protocol == "cross-id" else "clips"):
                                  len(results[name]), "missing_faces": sum(r.missing_output_faces
                                                                           for r in results[name])}
        row.update({k: v["median" if k in MEDIAN_COLUMNS else "mean"] for k, v in agg.items()})
        if not csim_ok:
            row.update(dict.fromkeys(CSIM_COLUMNS, "not measured"))
        rows.append(row)
        if sheets[name]:
            labels = ["source", "driving = ground truth", name] if protocol == "same-id" else \
                ["source", "driving", name]
            report.save_png(out_dir / f"contact_{protocol}_{name}.png", report.contact_sheet(sheets[name], labels))
    columns = SAME_ID_COLUMNS if protocol == "same-id" else CROSS_ID_COLUMNS
    summary["table"] = report.markdown_table(rows, columns)
    summary["wins"] = win_counts(summary, protocol) if len(renderers) > 1 else []
    report.write_json(out_dir / "results.json", summary)
    with atomic_output(out_dir / "results.md") as tmp:
        tmp.write_text(results_markdown(summary), encoding="utf-8")
    return summary


def results_markdown(summary: dict) -> str:
    """``results.md``: the command, the table, per-clip win counts, definitions and every input used."""
    protocol = summary["protocol"]
    lines = [f"# faceanim eval: {protocol}", ""]
    if summary.get("command"):
        lines += ["Reproduce with:", "", "```bash", summary["command"], "```", ""]
    st = summary["settings"]
    lines += [f"faceanim {summary.get('version')} (commit {summary.get('commit') or 'unknown'}); "
              f"up to {st.get('limit')} scored frames per clip, one every {st.get('every')} frames; "
              f"session {st.get('session')}", "", summary["table"]]
    lines += [f"**{w}**" for w in summary.get("warnings", [])]
    if summary.get("wins"):
        cols = ["renderer", "vs", *WIN_METRICS[protocol]]
        lines += ["", "Per-clip wins (renderer better than `vs` on that many clips, ties are no win):", "",
                  report.markdown_table(summary["wins"], cols)]
    if protocol == "cross-id":
        for name, r in summary["renderers"].items():
            for key in WEAKEST_BY:
                ranked = sorted((c for c in r["clips"] if _finite(c.get(key))), key=lambda c: c[key])
                if ranked:
                    weakest = ", ".join(f"{c['clip']} {c[key]:.2f}" for c in ranked[:WEAKEST])
                    lines.append(f"- {name}, weakest {key}: {weakest}")
    errors = {n: r["errors"] for n, r in summary["renderers"].items() if r["errors"]}
    for name, errs in errors.items():
        lines += [f"- {name}: {len(errs)} failed: " + "; ".join(errs[:5]) + (" …" if len(errs) > 5 else "")]
    lines += ["", "## Definitions", ""] + [f"- {k}: {v}" for k, v in summary["definitions"].items()]
    lines += [f"- {k}: {v}" for k, v in summary["not_measured"].items()]
    what = "pairs (portrait×clip)" if protocol == "cross-id" else "clips"
    lines += ["", f"## The {len(summary['inputs'])} {what}", ""] + [f"- {x}" for x in summary["inputs"]]
    return "\n".join(lines) + "\n"
