"""How the stage-I U-Net's raw output becomes an image: the one mapping Pix2PixModel (training and
validation), CascadeModel and the stage-III data (through Pix2PixModel) all use.

The U-Net works in [-1,1] (it ends in Tanh, as in pix2pix). With the top-level option
``residual: false`` (classic pix2pix) its output IS the image; with ``residual: true`` it is a
correction added to the input: image = clamp(lq + G(lq), -1, 1). A residual generator starts near the
identity and only has to learn the flare, so flare-free regions survive even a short schedule.
"""


def to_signed(image01):
    return image01 * 2 - 1


def to_unit(signed):
    return (signed + 1) / 2


def generate_signed(net, lq_signed, residual):
    """The generator's image in [-1,1] space, NOT clamped: the training losses see it whole, so their
    gradients never vanish at the range limits (a clamp there would freeze pixels pushed past them)."""
    out = net(lq_signed)
    return lq_signed + out if residual else out


def restore_image(net, lq01, residual):
    """A [0,1] batch -> the restored [0,1] batch (clamped), for validation, testing and stage-III data."""
    return to_unit(generate_signed(net, to_signed(lq01), residual).clamp(-1, 1))


def is_residual(opt):
    """The top-level ``residual`` option of a stage-I (Pix2PixModel) option dict; false when absent."""
    return bool(opt.get('residual', False))
