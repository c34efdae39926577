"""Voice activity per video frame: an energy detector (streaming, no model) and, if installed, silero-vad.

Silence must give a closed, resting mouth, so the speech generator multiplies mouth motion by this gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EnergyVad", "VadConfig", "frame_rms_db", "smooth_gate", "speech_share"]


@dataclass(frozen=True)
class VadConfig:
    """Energy VAD: a frame is speech if louder than ``floor_db`` and within ``range_db`` of the running peak."""

    floor_db: float = -50.0  # dBFS below which nothing is speech
    range_db: float = 35.0  # speech is within this many dB of the (slowly decaying) loudest recent frame
    peak_decay_db: float = 0.02  # per frame (0.5 dB/s at 25 fps)
    hangover: int = 3  # frames kept as speech after the energy drops (word endings, stops)
    min_speech: int = 2  # shorter bursts (clicks) are not speech


def frame_rms_db(samples: np.ndarray, samples_per_frame: int) -> np.ndarray:
    """RMS in dBFS of consecutive frames of ``samples_per_frame`` samples (the last partial frame included)."""
    x = np.asarray(samples, np.float64).ravel()
    n = -(-x.size // samples_per_frame)
    pad = np.zeros(n * samples_per_frame)
    pad[: x.size] = x
    rms = np.sqrt((pad.reshape(n, samples_per_frame) ** 2).mean(1))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


class EnergyVad:
    """Streaming energy VAD over per-frame dB values; state carries across calls (bounded memory)."""

    def __init__(self, config: VadConfig = VadConfig()) -> None:
        self.config = config
        self._peak = config.floor_db
        self._hang = 0
        self._run: list[bool] = []  # pending raw decisions of the current speech burst (< min_speech)

    def __call__(self, db: np.ndarray) -> np.ndarray:
        """Speech flags (bool) for these frames, in order."""
        c = self.config
        out = np.zeros(len(db), bool)
        for i, d in enumerate(np.asarray(db, np.float64)):
            self._peak = max(float(d), self._peak - c.peak_decay_db, c.floor_db)
            loud = d > c.floor_db and d > self._peak - c.range_db
            if loud:
                self._run.append(True)
                if len(self._run) >= c.min_speech:
                    self._hang = c.hangover
                    out[i] = True
                    # a burst just long enough: its first frames were speech too
                    for k in range(1, min(len(self._run), i + 1)):
                        out[i - k] = True
            else:
                self._run = []
                if self._hang > 0:
                    self._hang -= 1
                    out[i] = True
        return out


def smooth_gate(speech: np.ndarray, attack: int = 2, release: int = 4) -> np.ndarray:
    """Speech flags → a 0..1 gate that ramps up over ``attack`` frames and down over ``release`` frames."""
    g = np.zeros(len(speech), np.float32)
    level = 0.0
    for i, s in enumerate(speech):
        level = min(1.0, level + 1.0 / max(attack, 1)) if s else max(0.0, level - 1.0 / max(release, 1))
        g[i] = level
    return g


def speech_share(samples: np.ndarray, sample_rate: int, config: VadConfig = VadConfig()) -> float:
    """Fraction of 40-ms frames the energy VAD calls speech."""
    db = frame_rms_db(samples, max(1, round(sample_rate / 25)))
    return float(EnergyVad(config)(db).mean()) if db.size else 0.0


class SileroVad:
    """Streaming silero-vad (its ONNX model ships inside the ``silero-vad`` package; run with onnxruntime).

    ``__call__(samples)`` takes consecutive 16 kHz chunks whose length is a multiple of 640 (one 25-fps frame)
    and returns one speech flag per frame: the model scores 32-ms windows, each frame takes the score of the
    window covering its centre, then ``threshold`` with the same hangover as the energy detector.
    """

    WINDOW = 512
    CONTEXT = 64

    def __init__(self, threshold: float = 0.5, hangover: int = 3) -> None:
        import importlib.util
        from pathlib import Path

        from faceanim.errors import FaceAnimError

        spec = importlib.util.find_spec("silero_vad")
        if spec is None or spec.origin is None:
            raise FaceAnimError("silero-vad is not installed (pip install silero-vad --no-deps)")
        model = Path(spec.origin).parent / "data" / "silero_vad.onnx"
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise FaceAnimError("silero-vad needs onnxruntime (pip install onnxruntime)") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.hangover = hangover
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(self.CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)  # samples not yet scored
        self._scored = 0  # samples scored so far
        self._probs: list[float] = []  # per window, not yet used by a frame
        self._first_window = 0  # index of self._probs[0]
        self._frame = 0
        self._hang = 0

    def _score(self, samples: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        sr = np.array(16000, np.int64)
        while self._pending.size >= self.WINDOW:
            x = np.concatenate([self._context, self._pending[: self.WINDOW]])[None]
            out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": sr})
            self._probs.append(float(out[0, 0]))
            self._context = self._pending[self.WINDOW - self.CONTEXT : self.WINDOW]
            self._pending = self._pending[self.WINDOW :]
            self._scored += self.WINDOW

    def __call__(self, samples: np.ndarray, final: bool = False) -> np.ndarray:
        self._score(samples)
        if final and self._pending.size:
            self._score(np.zeros(self.WINDOW - self._pending.size, np.float32))
        n = len(samples) // 640
        out = np.zeros(n, bool)
        for i in range(n):
            centre = (self._frame + i) * 640 + 320
            w = min(centre // self.WINDOW, self._first_window + len(self._probs) - 1)
            p = self._probs[w - self._first_window] if self._probs else 0.0
            if p >= self.threshold:
                self._hang = self.hangover
                out[i] = True
            elif self._hang > 0:
                self._hang -= 1
                out[i] = True
        self._frame += n
        keep_from = max(0, (self._frame * 640 + 320) // self.WINDOW - self._first_window - 1)
        if keep_from > 0:
            del self._probs[:keep_from]
            self._first_window += keep_from
        return out
