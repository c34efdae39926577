"""MODA-style audio-to-motion network (networks only: no file access)."""

from faceanim.models.audio2motion.network import Audio2Motion, Audio2MotionConfig, Audio2MotionOutput

__all__ = ["Audio2Motion", "Audio2MotionConfig", "Audio2MotionOutput"]
