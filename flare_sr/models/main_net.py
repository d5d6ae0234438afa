"""How the stage-I U-Net's raw output becomes an image: the one mapping Pix2PixModel (training and
validation), CascadeModel and the stage-III data (through Pix2PixModel) all use.

The U-Net works in [-1,1] (it ends in Tanh, as in pix2pix). Whether its output is the image or a
correction added to the input is the arch's own switch, ``network_g.residual`` (Pix2PixUNet); the
image is clamped to [-1,1] only here, after the losses have seen it whole.
"""


def to_signed(image01):
    return image01 * 2 - 1


def to_unit(signed):
    return (signed + 1) / 2


def restore_image(net, lq01):
    """A [0,1] batch -> the restored [0,1] batch (clamped), for validation, testing and stage-III data."""
    return to_unit(net(to_signed(lq01)).clamp(-1, 1))
