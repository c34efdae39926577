"""Live mode (``faceanim live``): a camera, file or stream URL in, animated frames out as they are rendered."""
