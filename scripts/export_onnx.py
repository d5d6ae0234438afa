r"""Export the tile function of a flare_sr test model to ONNX, for flare_sr/infer.py --backend onnxruntime.

    python scripts/export_onnx.py -opt options/test_cascade.yml --out model.onnx
    python flare_sr/infer.py -opt options/test_cascade.yml --backend onnxruntime --onnx model.onnx \
        --input DIR --output DIR

The model is the one test.py and infer.py build from the option file (same networks, checkpoints,
``cascade`` switches). For CascadeModel the file holds the chained U-Net -> HINet tile function; for
a one-network model (Pix2PixModel, HINetModel) that network with its input/output mapping. Input
``tiles`` and output ``restored``: Bx3xHxW float32 in [0,1], dynamic B, H and W (multiples of the
``size_multiple`` stored in the file's metadata). fp32 only. The file is written atomically; --out must end in
``.onnx``. A training option file is refused: its checkpoints are the weights its training starts from. The metadata
also records the checkpoints of the networks in the graph and the options baked into it (e.g. ``cascade.use_post``,
``val.darken_only``, ``network_*``): infer.py stops when its options differ.
Needs ``pip install -e ".[onnx]"``. Exit status: 0 done, 2 bad input (one ``error:`` line).
"""
import argparse
from os import path as osp

from flare_sr.errors import ArgumentParser, exit_on_user_error
from flare_sr.models.onnx_backend import OPSET, check_opset, export_onnx
from flare_sr.pipeline.inference import build_inference_model, refuse_training_file
from flare_sr.utils.atomic import atomic_path, check_output_file, check_writable
from flare_sr.utils.options_check import files_named_by, load_option_file


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='test option file (model, networks, checkpoints)')
    parser.add_argument('--out', required=True, help='ONNX file to write, ending in .onnx (e.g. model.onnx)')
    parser.add_argument('--opset', type=int, default=OPSET, help=f'ONNX opset (default {OPSET})')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    check_opset(args.opset)  # before the model is built and its checkpoints load
    refuse_training_file(load_option_file(args.opt), args.opt)  # before --out is checked
    check_output_file(args.out, '--out', '.onnx', 'an ONNX model', inputs=files_named_by(args.opt), make_folder=False)
    check_writable(osp.dirname(osp.abspath(args.out)), flag='--out')
    model = build_inference_model(args.opt)
    with atomic_path(args.out) as tmp:
        metadata = export_onnx(model, tmp, opset=args.opset, source=args.opt)
    print(f"exported {metadata['model_type']} tile function (size multiple {metadata['size_multiple']}, "
          f'opset {args.opset}, dynamic batch/height/width) to {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB)')


if __name__ == '__main__':
    main()
