"""What a model card records about its data: every cached clip, its identity, split, source and licence flag.

    python -m faceanim.train.card runs/cache ../shared/data/manifest.csv weights/mobileportrait_cpu_clips.csv
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from faceanim.media.atomic import atomic_output
from faceanim.train.splits import is_validation

# repositories whose terms are non-commercial (the sample data's MANIFEST.md licence table)
NON_COMMERCIAL_REPOS = ("filby89/spectre", "Zielon/metrical-tracker", "radekd91/inferno",
                        "facebookresearch/VisualVoice", "sky24h/Face_Animation_Real_Time",
                        "yiranran/Audio-driven-TalkingFace-HeadPose")


def clip_rows(cache: Path, manifest: Path) -> list[dict]:
    index = json.loads((cache / "index.json").read_text())
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = {r["local_path"]: r for r in csv.DictReader(fh)}
    out = []
    for e in index["clips"]:
        local = f"{Path(e['clip']).parent.name}/{e['name']}"
        m = rows.get(local, {})
        nc = "NON-COMMERCIAL" in m.get("notes", "") or m.get("source_repo", "") in NON_COMMERCIAL_REPOS
        out.append({"clip": local, "identity": e["identity"], "split": "validation" if is_validation(e["name"])
                    else "train", "pairs": e["pairs"] * e["sources"], "source_repo": m.get("source_repo", ""),
                    "commit": m.get("commit", ""), "non_commercial": "yes" if nc else ""})
    for s in index.get("skipped", []):
        out.append({"clip": s["clip"], "identity": "", "split": f"skipped: {s['reason']}", "pairs": 0,
                    "source_repo": "", "commit": "", "non_commercial": ""})
    return out


def write_clip_list(cache: Path, manifest: Path, out: Path) -> list[dict]:
    rows = clip_rows(cache, manifest)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    with atomic_output(out) as tmp:
        tmp.write_text(buf.getvalue())
    return rows


if __name__ == "__main__":
    r = write_clip_list(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    train = [x for x in r if x["split"] == "train"]
    print(f"{len(train)} training clips ({sum(int(x['pairs']) for x in train)} pairs, "
          f"{len({x['identity'] for x in train})} identities), "
          f"{sum(x['split'] == 'validation' for x in r)} validation clips; "
          f"non-commercial training clips: {', '.join(x['clip'] for x in train if x['non_commercial'])}")
