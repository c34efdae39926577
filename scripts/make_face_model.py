"""Build ``src/faceanim/assets/face_model.npz``: canonical 3D face, mesh topology and landmark groups.

mediapipe 0.10.14 ships the 478-point face mesh network but not its canonical face geometry, so the
canonical shape is derived here from the mesh's own 3D output on a public-domain portrait
(``skimage.data.astronaut()``): the landmarks are put in a head frame (x: right eye → left eye,
y: forehead → chin, z: into the screen), scaled to unit RMS radius, and made left/right symmetric.
Reproduce with ``python scripts/make_face_model.py``.
"""

from __future__ import annotations

from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.python.solutions import face_mesh_connections as fmc
from skimage import data

OUT = Path(__file__).resolve().parents[1] / "src" / "faceanim" / "assets" / "face_model.npz"


def ordered_loop(edges: frozenset[tuple[int, int]]) -> list[int]:
    """Order an edge set describing one closed or open polyline into a vertex sequence."""
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    ends = [v for v, n in adj.items() if len(n) == 1]
    start = ends[0] if ends else min(adj)
    seq, prev = [start], None
    while True:
        nxt = [v for v in adj[seq[-1]] if v != prev and v not in seq]
        if not nxt:
            break
        prev = seq[-1]
        seq.append(nxt[0])
    return seq


def lip_rings() -> tuple[list[int], list[int]]:
    """Split mediapipe's lip edges into the outer and inner lip contours."""
    adj: dict[int, set[int]] = {}
    for a, b in fmc.FACEMESH_LIPS:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    seen: set[int] = set()
    rings = []
    for v in sorted(adj):
        if v in seen:
            continue
        comp, stack = [], [v]
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            comp.append(u)
            stack.extend(adj[u] - seen)
        rings.append(frozenset(e for e in fmc.FACEMESH_LIPS if e[0] in comp))
    loops = [ordered_loop(r) for r in rings]
    inner = next(loop for loop in loops if 13 in loop)
    outer = next(loop for loop in loops if 13 not in loop)
    return outer, inner


def triangles_from_edges(edges: frozenset[tuple[int, int]]) -> np.ndarray:
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = set()
    for a, b in edges:
        for c in adj[a] & adj[b]:
            tris.add(tuple(sorted((a, b, c))))
    return np.array(sorted(tris), dtype=np.int32)


def main() -> None:
    img = data.astronaut()
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        res = fm.process(img)
    pts = np.array([(p.x * w, p.y * h, p.z * w) for p in res.multi_face_landmarks[0].landmark])

    right_eye = [33, 133, 159, 145]
    left_eye = [362, 263, 386, 374]
    x_axis = pts[left_eye].mean(0) - pts[right_eye].mean(0)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = pts[152] - pts[10]
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    frame = np.stack([x_axis, y_axis, z_axis])
    centre = pts[:468].mean(0)
    can = (pts - centre) @ frame.T
    can /= np.sqrt((can[:468] ** 2).sum(1).mean())

    mirrored = can * np.array([-1.0, 1.0, 1.0])
    d = np.linalg.norm(can[:, None] - mirrored[None], axis=-1)
    mirror = d.argmin(1)
    assert (mirror[mirror] == np.arange(len(can))).mean() > 0.97, "mirror map is not an involution"
    can = 0.5 * (can + mirrored[mirror])
    can[:, 0] -= can[:468, 0].mean()

    outer_lips, inner_lips = lip_rings()
    groups = {
        "face_oval": ordered_loop(fmc.FACEMESH_FACE_OVAL),
        "left_eye": ordered_loop(fmc.FACEMESH_LEFT_EYE),
        "right_eye": ordered_loop(fmc.FACEMESH_RIGHT_EYE),
        "left_eyebrow": sorted({v for e in fmc.FACEMESH_LEFT_EYEBROW for v in e}),
        "right_eyebrow": sorted({v for e in fmc.FACEMESH_RIGHT_EYEBROW for v in e}),
        "left_iris": ordered_loop(fmc.FACEMESH_LEFT_IRIS),
        "right_iris": ordered_loop(fmc.FACEMESH_RIGHT_IRIS),
        "outer_lips": outer_lips,
        "inner_lips": inner_lips,
    }
    tris = triangles_from_edges(fmc.FACEMESH_TESSELATION)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        version=np.int32(1),
        canonical=can.astype(np.float32),
        mirror=mirror.astype(np.int32),
        triangles=tris,
        **{f"group_{k}": np.array(v, dtype=np.int32) for k, v in groups.items()},
    )
    print(f"wrote {OUT}: {len(can)} points, {len(tris)} triangles, groups "
          + ", ".join(f"{k}={len(v)}" for k, v in groups.items()))


if __name__ == "__main__":
    main()
