"""Renderers: turn target landmarks + a prepared source into an output crop (registry in ``registry``)."""
from faceanim.render import mobileportrait  # noqa: F401  (registers "mobileportrait"; imports torch lazily)
