"""scripts/bench/bench_model_cost.py: the MAC counter, by hand and against the published costs."""
import torch
from basicsr.archs import build_network

from flare_sr.archs.nafnet_arch import NAFNet
from tests.helpers import load_script


def test_mac_counter_counts_conv_and_transposed_conv_by_hand():
    bench = load_script('bench/bench_model_cost')
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ConvTranspose2d(8, 4, 2, stride=2),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 10))
    conv = 16 * 16 * 8 * (3 * 3 * 3)  # output elements x (in * k * k)
    transposed = 8 * 16 * 16 * (4 * 2 * 2)  # input elements scattered into out * k * k
    linear = 4 * 32 * 32 * 10
    assert bench.count_macs(net, (1, 3, 16, 16)) == conv + transposed + linear


def test_mac_counter_reproduces_the_reference_costs():
    """Published and independently measured costs at 256x256: HINet 157.6, depth 4 121.6, unet_256 6.05 GMACs."""
    bench = load_script('bench/bench_model_cost')
    gmacs = {}
    for name, opt in [('hinet', {'type': 'HINet'}), ('hinet_depth4', {'type': 'HINet', 'depth': 4}),
                      ('unet_256', {'type': 'Pix2PixUNet'})]:
        with torch.device('meta'):
            net = build_network(opt)
        gmacs[name] = round(bench.count_macs(net, (1, 3, 256, 256)) / 1e9, 2)
    assert gmacs == {'hinet': 157.6, 'hinet_depth4': 121.63, 'unet_256': 6.05}


def test_mac_counter_gives_nafnet_its_published_cost():
    """The NAFNet paper (Table 1 / SIDD) lists 16 GMACs at 256x256 for width 32; elementwise products excluded."""
    bench = load_script('bench/bench_model_cost')
    with torch.device('meta'):
        net = NAFNet(width=32, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])
    assert round(bench.count_macs(net, (1, 3, 256, 256)) / 1e9) == 16


def test_mac_counter_adds_uformers_attention_products():
    """Each Uformer block adds q k^T and weights x v to its layers: 2 * pixels * window² * channels MACs."""
    from flare_sr.archs.uformer_arch import Uformer
    bench = load_script('bench/bench_model_cost')
    depths = [1, 2, 1, 1, 1, 1, 1, 1, 1]
    with torch.device('meta'):
        net = Uformer(img_size=64, embed_dim=4, win_size=4, depths=depths)  # 4x4 windows at every level
    layers = 0

    def hook(module, inputs, output):
        nonlocal layers
        layers += bench.conv_macs(module, inputs, output)

    counted = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    handles = [module.register_forward_hook(hook) for module in net.modules() if isinstance(module, counted)]
    total = bench.count_macs(net, (1, 3, 64, 64))  # the same forward pass runs the hooks above
    for handle in handles:
        handle.remove()
    attention = 0
    for index, depth in enumerate(depths):
        level = [0, 1, 2, 3, 4, 3, 2, 1, 0][index]
        channels = 4 * 2**level * (2 if index > 4 else 1)  # decoder levels: upsampled + skip
        attention += depth * 2 * (64 // 2**level)**2 * 4**2 * channels
    assert total - layers == attention
