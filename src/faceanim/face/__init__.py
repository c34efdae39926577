"""Face analysis: detection, 478 landmarks, head pose, expression, eye/lip ratios, crops, masks, tracking."""
