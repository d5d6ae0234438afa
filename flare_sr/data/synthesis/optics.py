"""Chromatic effects and mild defocus of the flare layer.

* Lateral chromatic aberration: the lens magnifies red and blue slightly differently, so flare far
  from the optical centre splits into coloured fringes (Hecht, "Optics", ch. 6). Modelled as a
  radial scaling of the red and blue planes about the optical centre by ``1 +- shift``.
* Defocus: the flare of a light that is not in the focal plane is convolved with the aperture's
  image, a uniform disc (geometric optics), of ``defocus_radius`` pixels.
"""
import cv2
import numpy as np

from flare_sr.data.synthesis.geometry import optical_centre


def chromatic_aberration(layer, shift):
    """HxWx3 float32: red scaled by ``1 + shift`` and blue by ``1 - shift`` about the frame centre; green kept."""
    if shift == 0:
        return layer
    height, width = layer.shape[:2]
    cx, cy = optical_centre(height, width)
    out = layer.copy()
    for channel, scale in ((0, 1 + shift), (2, 1 - shift)):
        matrix = np.float32([[scale, 0, (1 - scale) * cx], [0, scale, (1 - scale) * cy]])
        out[..., channel] = cv2.warpAffine(np.ascontiguousarray(layer[..., channel]), matrix, (width, height),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out


def disc_kernel(radius):
    """Normalised (2k+1)^2 float32 anti-aliased disc of ``radius`` pixels (sums to 1)."""
    reach = int(np.ceil(radius)) + 1
    coords = np.arange(-reach, reach + 1, dtype=np.float32)
    distance = np.hypot(coords[:, None], coords[None, :])
    kernel = np.clip(np.float32(radius + 0.5) - distance, 0.0, 1.0)
    return kernel / kernel.sum()


def defocus(layer, radius):
    """HxWx3 float32 layer convolved with a disc of ``radius`` pixels (energy kept away from borders)."""
    if radius <= 0:
        return layer
    return cv2.filter2D(layer, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT)
