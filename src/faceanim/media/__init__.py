"""Media I/O: video, audio and image reading/writing, atomic outputs and the synthetic-media mark."""

from faceanim.media.atomic import atomic_output
from faceanim.media.audio import audio_duration, iter_audio, read_audio
from faceanim.media.image import read_image, read_image_metadata, resize_max_side, write_image
from faceanim.media.kinds import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    is_audio_path,
    is_image_path,
    is_video_path,
)
from faceanim.media.provenance import provenance_metadata, read_provenance
from faceanim.media.video import (
    VideoFrame,
    VideoInfo,
    VideoWriter,
    iter_video,
    probe_video,
    rotate_image,
    write_video,
)

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "VideoFrame",
    "VideoInfo",
    "VideoWriter",
    "atomic_output",
    "audio_duration",
    "is_audio_path",
    "is_image_path",
    "is_video_path",
    "iter_audio",
    "iter_video",
    "probe_video",
    "provenance_metadata",
    "read_audio",
    "read_image",
    "read_image_metadata",
    "read_provenance",
    "resize_max_side",
    "rotate_image",
    "write_image",
    "write_video",
]
