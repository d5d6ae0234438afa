"""The grid of overlapping patches cut from a large image, with the last patch pushed against the border.

The original solution cut 512 patches at stride 256 and shifted the last window to end at the image
border, so every pixel is in some patch (108 patches for a 2448x3264 image).
"""
from flare_sr.errors import FlareSRError


def patch_origins(length, patch, stride):
    """Start offsets along one axis: 0, stride, 2*stride, ..., and finally ``length - patch`` if not yet reached."""
    if patch <= 0 or stride <= 0:
        raise FlareSRError(f'patch size ({patch}) and stride ({stride}) must be positive')
    if length < patch:
        raise FlareSRError(f'image side of {length} px is smaller than the patch size {patch}')
    origins = list(range(0, length - patch + 1, stride))
    if origins[-1] != length - patch:
        origins.append(length - patch)
    return origins


def patch_grid(height, width, patch, stride):
    """All (y, x) top-left corners, row by row."""
    return [(y, x) for y in patch_origins(height, patch, stride) for x in patch_origins(width, patch, stride)]
