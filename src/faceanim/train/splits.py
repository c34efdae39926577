"""Train/validation split by identity: the same person in several clips is one identity.

The rules follow the sample data's MANIFEST.md notes: MEAD speaker ids (M030, W011, ...) across
repositories, the named duplicates (A. Ocasio-Cortez, Robert Downey Jr.), and series of clips cut from
one video (``*_clip1``/``*_clip2``, ``xzy1..3``). Anything the rules cannot tell apart is its own identity;
validation identities are picked only among clips whose person is unambiguous.
"""

from __future__ import annotations

import re
from pathlib import Path

_SAME_PERSON = {
    "aoc": ("sadtalker_WDA_AlexandriaOcasioCortez_000", "retalking_face3", "vexpress_AOC_gt", "edtalk_pose_source2"),
    "rdj": ("pcavs_audio_source_00104", "pcavs_pose_source_741400163"),
    "grid": ("lipnet_grid_",),  # LipNet's GRID samples: speakers not named, treated as one identity
    "eamm_video": ("eamm_video_",),
    "hellomeme_xzy": ("hellomeme_xzy",),
    "edtalk_expression": ("styletalk_style_sadgirl_clip1",),
}
_MEAD = re.compile(r"(?:^|_)([MW]\d{3})(?:_|$)")
_SERIES = re.compile(r"(_clip_?\d+(_short)?|_talk\d+_clip_?\d+)$")

# Held out: never trained on. One clip per identity is evaluated; all the identity's clips are excluded.
VALIDATION_IDENTITIES = (
    "sadtalker_WDA_KatieHill_000",
    "sadtalker_WDA_BobMenendez_000",
    "smirk_dafoe",
    "styletalk_source_KristiNoem",
    "mimictalk_German_20s",
    "metricaltracker_justin_video",
    "pcavs_pose_source_00473",
    "deepavsr_lrs2_00016",
    "hyperreenact_target_video_1",
    "vasa1hack_M2Ohb0FAaJU_1",
    "mead_W036",
    "mead_W011",
)
VALIDATION_EVAL_CLIPS = (
    "talking/sadtalker_WDA_KatieHill_000.mp4",
    "talking/sadtalker_WDA_BobMenendez_000.mp4",
    "talking/smirk_dafoe.mp4",
    "driving/styletalk_source_KristiNoem.mp4",
    "talking/mimictalk_German_20s.mp4",
    "driving/metricaltracker_justin_video.mp4",
    "talking/pcavs_pose_source_00473.mp4",
    "talking/deepavsr_lrs2_00016.mp4",
    "talking/hyperreenact_target_video_1.mp4",
    "talking/vasa1hack_M2Ohb0FAaJU_1.mp4",
    "talking/spectre_W036_level_3_happy_007.mp4",
    "driving/dreamtalk_W011_front_happy_level3_001.mp4",
)


def identity_of(clip: str | Path) -> str:
    """Identity key of a clip (file name without extension decides)."""
    stem = Path(clip).stem
    for key, prefixes in _SAME_PERSON.items():
        if any(stem == p or (p.endswith("_") and stem.startswith(p)) or stem.startswith(p) for p in prefixes):
            return key
    m = _MEAD.search(stem)
    if m:
        return f"mead_{m.group(1)}"
    return _SERIES.sub("", stem)


def is_validation(clip: str | Path) -> bool:
    return identity_of(clip) in VALIDATION_IDENTITIES


def split_clips(clips: list[Path]) -> tuple[list[Path], list[Path]]:
    """(train, validation) by identity."""
    train = [c for c in clips if not is_validation(c)]
    val = [c for c in clips if is_validation(c)]
    return train, val
