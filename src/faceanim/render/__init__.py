"""Renderers: turn target landmarks + a prepared source into an output crop (registry in ``registry``)."""
