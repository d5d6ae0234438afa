"""Where lights are, and the per-pixel offsets and distances every radial component is drawn from."""
import numpy as np


def optical_centre(height, width):
    """(x, y) in pixels of the optical axis, taken at the frame centre."""
    return (width - 1) / 2.0, (height - 1) / 2.0


def sample_light_position(rng, height, width, in_frame_prob, outside):
    """(x, y, in_frame): uniform in the frame with ``in_frame_prob``, otherwise in a border band.

    The band reaches ``outside`` times the frame size beyond each edge: a light just outside the
    frame still throws glare and ghosts into it.
    """
    if rng.random() < in_frame_prob:
        return rng.uniform(0, width - 1), rng.uniform(0, height - 1), True
    margin_x, margin_y = outside * width, outside * height
    while True:  # uniform in the enlarged frame, rejecting points inside it
        x = rng.uniform(-margin_x, width - 1 + margin_x)
        y = rng.uniform(-margin_y, height - 1 + margin_y)
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            return x, y, False


def offsets(height, width, x, y):
    """(dx, dy, radius): HxW float32 maps of the pixel offset from (x, y) and its length, in pixels."""
    dx = np.broadcast_to(np.arange(width, dtype=np.float32) - np.float32(x), (height, width))
    dy = np.broadcast_to((np.arange(height, dtype=np.float32) - np.float32(y))[:, None], (height, width))
    dx, dy = np.ascontiguousarray(dx), np.ascontiguousarray(dy)
    # Not cv2.magnitude: its IPP path rounds differently with the output's memory alignment, so the same
    # sample key gave different flares. Products, a sum and a square root are exact IEEE: the same bits anywhere.
    return dx, dy, np.sqrt(dx * dx + dy * dy)


def soft_disc(height, width, centre_x, centre_y, radius, pad=0):
    """Anti-aliased disc of ``radius`` pixels on an (H + 2 pad) x (W + 2 pad) canvas starting at -pad; in [0, 1]."""
    _, _, distance = offsets(height + 2 * pad, width + 2 * pad, centre_x + pad, centre_y + pad)
    return np.clip(np.float32(radius + 0.5) - distance, 0.0, 1.0)
