"""Motion: the per-frame description every driver produces, its transfer to a source, templates."""
