"""Held-out flare families, for evaluation only: no training code imports this package.

Each family is made by a method that no training component (``flare_sr.data.synthesis``) uses:

* ``psf``: Fourier optics, a pupil with dust and scratches propagated to a PSF at three wavelengths
  (Wu et al. ICCV 2021's scattering model) and convolved with the light sources.
* ``raytrace``: ghosts traced through a random paraxial lens prescription with ray-transfer
  matrices, Monte-Carlo rays through the aperture splatted into a histogram per colour.
* ``anamorphic``: a cylindrical-lens flare, drawn with scikit-image's rasterisers and SciPy filters:
  a horizontal streak across the frame, a dispersive halo ring and vertically stretched ghosts.
* ``overlay``: flare as augmentation libraries paint it (albumentations' ``RandomSunFlare``, method
  ``overlay``): a sun disc with a radial glow and translucent discs and hexagons along a line through it,
  alpha-blended onto the sRGB photo.
* ``veiling``: broad veiling glare, the whole scene's linear light plus one or two bright lights convolved
  with the CIE 146:2002 glare spread function (1/theta^3, 1/theta^2, 1/theta terms and a constant, with age
  and eye pigmentation) and scaled by a lens scatter fraction: a smooth veil over much of the frame.

``psf``, ``raytrace``, ``anamorphic`` and ``veiling`` share the training's compositing (scene and flare added
in linear light, same gamma range), so a gain on them measures how the *flare shapes* transfer; ``overlay``
also changes the compositing. Their strength is calibrated to real flare photos (``statistics.REAL_FLARE_REFERENCE``).
``HELDOUT_FAMILIES`` maps names to
``f(clean_rgb01, rng) -> (flared, info)``, the contract of ``synthesize_flare``.
"""
from flare_sr.data.heldout.anamorphic import anamorphic_flare
from flare_sr.data.heldout.overlay import overlay_flare
from flare_sr.data.heldout.psf import psf_flare
from flare_sr.data.heldout.raytrace import raytrace_flare
from flare_sr.data.heldout.veiling import veiling_flare

HELDOUT_FAMILIES = {'psf': psf_flare, 'raytrace': raytrace_flare, 'anamorphic': anamorphic_flare,
                    'overlay': overlay_flare, 'veiling': veiling_flare}

__all__ = ['HELDOUT_FAMILIES', 'anamorphic_flare', 'overlay_flare', 'psf_flare', 'raytrace_flare', 'veiling_flare']
