"""faceanim: animate a single portrait from a driving video, image, motion template or webcam on a CPU."""

__version__ = "0.1.0"
