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
