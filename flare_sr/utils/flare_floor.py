"""``val.flare_floor``: changes fainter than a floor are not made (soft thresholding of the removed layer).

A flare-removal net trained on a few photos also takes a faint veil off photos that have none: on the demo's
flare-free test photos the tiny cascade removes 1-6 levels of 255 everywhere (docs/evaluation.md, rounds 8 and 10).
Real flare is far stronger where it matters (a glare whose photo scores 21 dB is tens of levels high). The
floor is soft thresholding (Donoho, "De-noising by soft-thresholding", IEEE Trans. Inf. Theory 1995) of the change
``lq - out``, per pixel and channel: a change smaller than the floor is not made, a larger one is shrunk by it.
"""


def apply_flare_floor(lq, out, floor):
    """``lq - sign(d) * max(|d| - floor, 0)`` with ``d = lq - out``: the output with changes below ``floor`` undone.

    Args:
        lq: Bx3xHxW [0,1] tensor, the input.
        out: Bx3xHxW [0,1] tensor on the same device, the model's output for it.
        floor: float in [0, 1), a fraction of full scale (2 levels of 255: 0.0078); 0 returns ``out`` as it is.

    Returns:
        Bx3xHxW tensor in [0,1].
    """
    if not floor:
        return out
    change = lq - out
    return lq - change.sign() * (change.abs() - floor).clamp(min=0)
