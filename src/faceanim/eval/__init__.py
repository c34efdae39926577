"""Evaluation: image, landmark, pose, expression, temporal and audio-visual metrics plus report writers."""
