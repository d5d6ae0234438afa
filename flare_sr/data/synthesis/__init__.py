"""Training flare synthesis: the procedural family and the components it is built from.

Compositing in linear light (``compositing``, ``sensor``), one module per optical component
(``glare``, ``starburst``, ``scatter``, ``ghosts``, ``sources``, ``optics``) and the family that
combines them (``procedural``). The held-out evaluation families live in ``flare_sr.data.heldout``,
which nothing here imports. docs/synthesis.md describes every component with its source.
"""
from flare_sr.data.synthesis.procedural import COMPONENTS, FlareConfig, render_procedural_flare, synthesize_flare

__all__ = ['COMPONENTS', 'FlareConfig', 'render_procedural_flare', 'synthesize_flare']
