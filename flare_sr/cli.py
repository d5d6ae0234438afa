"""The command lines behind flare_sr/train.py, test.py, infer.py and train_pipeline.py and the console scripts
``flare-sr-train``, ``flare-sr-test``, ``flare-sr-infer`` and ``flare-sr-pipeline`` (setup.py).

Each ``*_main`` parses its arguments and calls the library (BasicSR's loops with flare_sr's fixes,
flare_sr.pipeline). A user error is one ``error: ...`` line and exit status 2 (``exit_on_user_error``); so is a bad
command line (``flare_sr.errors.ArgumentParser``, which basicsr_fixes also gives BasicSR's parser of train/test).
Outputs go under the repository root (experiments/, results/, tb_logger/), wherever the command is started.
"""
import importlib
import sys
from argparse import RawDescriptionHelpFormatter
from os import path as osp

import torch
import torch.distributed as dist

from flare_sr import basicsr_fixes
from flare_sr.errors import ArgumentParser, FlareSRError, exit_on_user_error
from flare_sr.pipeline.inference import (TILE_FLAGS, build_inference_model, build_onnx_predictor, check_inputs,
                                         list_inputs, plan_outputs, predict_files, save_tile_preview, write_zip)
from flare_sr.pipeline.stage3_data import prepare_stage3_data
from flare_sr.pipeline.stages import pipeline_name, run_pipeline
from flare_sr.utils.atomic import check_folders_clear, check_output_file, check_writable, inside
from flare_sr.utils.cpu_memory import keep_freed_cpu_memory
from flare_sr.utils.options_check import files_named_by
from flare_sr.utils.precision import PRECISIONS
from flare_sr.utils.tiling import tile_problems

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))  # the repository


def run(pipeline_name, is_train):
    """Run ``basicsr.<pipeline_name>`` (train or test) with our fixes; its parser reads ``sys.argv`` and checks the
    options. Exit status 3 when training stops on a non-finite loss (``train.nonfinite: stop``)."""
    basicsr_fixes.apply()
    if not torch.cuda.is_available():
        keep_freed_cpu_memory()
    option_path = basicsr_fixes.option_path_from_argv()
    if is_train and option_path is not None and not basicsr_fixes.help_requested():  # else the parser answers
        prepare_stage3_data(option_path)
    module = importlib.import_module(f'basicsr.{pipeline_name}')  # after apply(): it patches these modules
    try:
        getattr(module, f'{pipeline_name}_pipeline')(ROOT)
    except FloatingPointError as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(3)
    except (KeyboardInterrupt, RuntimeError) as error:
        # Ctrl-C while torch.save writes a checkpoint reaches us as torch's RuntimeError "unexpected pos"
        if not isinstance(error, KeyboardInterrupt) and not isinstance(error.__context__, KeyboardInterrupt):
            raise
        hint = basicsr_fixes.resume_hint() if is_train else None
        raise KeyboardInterrupt(*([hint] if hint else [])) from None
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


@exit_on_user_error
def train_main():
    """``flare_sr/train.py -opt FILE [--auto_resume] [--launcher pytorch] ...`` (BasicSR's arguments)."""
    run('train', is_train=True)


@exit_on_user_error
def test_main():
    """``flare_sr/test.py -opt FILE [--precision fp32|bf16|fp16|auto] ...`` (BasicSR's arguments and ours,
    basicsr_fixes.TestArgumentParser)."""
    run('test', is_train=False)


INFER_DESCRIPTION = """Remove flare from an image or a folder of images at full resolution; pack the submission.

    python flare_sr/infer.py -opt options/test_cascade.yml --input datasets/dacon/test_input_img \\
        --output results/submission --zip results/submission.zip [--tile 512] [--self-ensemble]

Any flare_sr test option file works (CascadeModel, Pix2PixModel, HINetModel, DeflareModel); its datasets are ignored.
DeflareModel's flare layers go to --save-flare FOLDER.
``test_input_20000.png`` becomes ``test_20000.png``; other names keep their stem. 16-bit, grayscale, alpha, EXIF
orientation, the colour profile and EXIF are kept (docs/inference.md); an animated or multi-page image is refused.
No output replaces an input, or a file flare_sr did not write unless --overwrite. Exit status: 0 done, 2 bad input
(one ``error:`` line naming each file at fault).
"""


def infer_parser():
    parser = ArgumentParser(description=INFER_DESCRIPTION, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='test option file (model, checkpoints, val.tile)')
    parser.add_argument('--input', required=True, help='a flared image, or a folder of them')
    parser.add_argument('--output', required=True, help='folder for the restored PNGs (created)')
    parser.add_argument('--zip', help='also pack the outputs into this submission zip (a name ending in .zip)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace files in --output that flare_sr did not write (its own are always replaced)')
    parser.add_argument('--tile', type=int, help='tile size (overrides val.tile.size; smaller if out of memory)')
    parser.add_argument('--overlap', type=int, help='tile overlap (overrides val.tile.overlap)')
    parser.add_argument('--self-ensemble', action='store_true', help='average x8 flips/rotations (8x slower)')
    parser.add_argument('--save-tiles', metavar='PNG',
                        help='also draw the tile grid and blend weights over the first input')
    parser.add_argument('--save-flare', metavar='FOLDER',
                        help="also write each image's predicted flare layer there, named as its output (DeflareModel)")
    parser.add_argument('--precision', choices=PRECISIONS,
                        help='network precision (overrides val.precision; auto: bf16 where native, else fp32)')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default='pytorch',
                        help='run the tiles through PyTorch or ONNX Runtime (needs --onnx)')
    parser.add_argument('--onnx', metavar='FILE', help='ONNX file from scripts/export_onnx.py (--backend onnxruntime)')
    return parser


@exit_on_user_error
def infer_main(argv=None):
    """``flare_sr/infer.py``: see ``INFER_DESCRIPTION``."""
    args = infer_parser().parse_args(argv)
    problems = tile_problems({'size': args.tile, 'overlap': args.overlap}, flags=TILE_FLAGS)
    if problems:
        raise FlareSRError('; '.join(problems))
    if args.backend != 'onnxruntime' and args.onnx:
        raise FlareSRError('--onnx is only read with --backend onnxruntime')
    if args.backend == 'onnxruntime' and args.precision not in (None, 'fp32', 'auto'):  # auto: fp32 without bf16
        raise FlareSRError(f'--precision {args.precision}: the onnxruntime backend runs the exported fp32 model')
    if not torch.cuda.is_available():
        keep_freed_cpu_memory()
    inputs, skipped = list_inputs(args.input)
    for line in skipped:
        print(line, file=sys.stderr if line.startswith('warning:') else sys.stdout)
    check_inputs(inputs)  # fail on a file the run would stop at now, not after an hour of inference
    plan = plan_outputs(inputs, args.output, args.overwrite)
    flare_plan = {}
    if args.save_flare:
        if osp.realpath(args.save_flare) == osp.realpath(args.output):
            raise FlareSRError(f'--save-flare {args.save_flare}: is the --output folder, where the flare layers would '
                               'replace the restored images; choose another folder')
        for flag, folder, other_flag, other in (('--save-flare', args.save_flare, '--output', args.output),
                                                ('--output', args.output, '--save-flare', args.save_flare)):
            if inside(folder, other):  # one folder of outputs would hold the other's: a mixed submission
                raise FlareSRError(f'{flag} {folder}: lies inside the {other_flag} folder {other}; the restored images '
                                   'and the flare layers go in folders side by side')
        flare_plan = dict(plan_outputs(inputs, args.save_flare, args.overwrite, flag='--save-flare'))
    own_files = ([('the input', path) for path in inputs] + [('the output', target) for _, target in plan]
                 + [('the flare layer', target) for target in flare_plan.values()]
                 + files_named_by(args.opt) + [('the --onnx file', args.onnx)])
    if args.zip:
        check_output_file(args.zip, '--zip', '.zip', 'the submission zip',
                          inputs=own_files + [('the --save-tiles picture', args.save_tiles)], make_folder=False)
    if args.save_tiles:
        check_output_file(args.save_tiles, '--save-tiles', '.png', 'a PNG picture', inputs=own_files,
                          make_folder=False)
    folders = [('--output', args.output, args.output), ('--save-flare', args.save_flare, args.save_flare)]
    for flag, path in (('--zip', args.zip), ('--save-tiles', args.save_tiles)):
        if path:
            folders.append((flag, path, osp.dirname(osp.abspath(path))))
    # e.g. --output x.zip --zip x.zip: found now, not after the inference, whether or not the paths exist yet
    check_folders_clear(folders, own_files + [('the --zip file', args.zip),
                                              ('the --save-tiles picture', args.save_tiles)])
    # the model before any folder or file: its options, checkpoints and tiles are checked as it is built
    if args.backend == 'onnxruntime':
        model = build_onnx_predictor(args.opt, args.onnx, args.tile, args.overlap, args.self_ensemble, args.precision)
        backend = f'backend: onnxruntime {model.describe()}'
    else:
        model = build_inference_model(args.opt, args.tile, args.overlap, args.self_ensemble, args.precision)
        backend = f"backend: pytorch on {model.device}, precision {model.tile_options()['precision']}"
    if args.save_flare and not getattr(model, 'predicts_flare', False):
        raise FlareSRError(f'--save-flare: {getattr(model, "model_type", type(model).__name__)} predicts no flare '
                           'layer (DeflareModel does)')
    # folders are made only now, everything above checked: a refused run leaves none behind
    for flag, path in (('--zip', args.zip), ('--save-tiles', args.save_tiles)):
        if path:
            check_writable(osp.dirname(osp.abspath(path)), flag)
    check_writable(args.output)
    if args.save_flare:
        check_writable(args.save_flare, '--save-flare')
    print(backend)
    if args.save_tiles:
        save_tile_preview(model, plan[0][0], args.save_tiles)
    count, pixels, seconds = predict_files(model, plan, flare_plan=flare_plan)
    summary = (f'wrote {count} image{"s" if count != 1 else ""} ({pixels / 1e6:.1f} Mpixel) to {args.output} in '
               f'{seconds:.1f} s ({seconds / count:.2f} s/image)')
    if args.zip:
        write_zip(args.zip, [target for _, target in plan])
        summary += f'; submission zip {args.zip} ({osp.getsize(args.zip) / 2**20:.1f} MiB)'
    print(summary)


# train_pipeline.py's former flags (named after the original solution's files), still accepted with a warning.
RENAMED_PIPELINE_FLAGS = {'--main': '--stage1', '--phase1': '--stage2', '--phase2': '--stage3'}


def renamed_pipeline_flags(argv):
    """(``argv`` with the former flags (``RENAMED_PIPELINE_FLAGS``) replaced, one ``warning:`` line each for the
    caller to print once the run is accepted); a FlareSRError where one stage is given twice (under its old and its
    new flag)."""
    renamed, seen, warnings = [], set(), []
    for arg in argv:
        flag, equals, value = arg.partition('=')
        if flag in RENAMED_PIPELINE_FLAGS:
            warnings.append(f'warning: {flag} is deprecated; use {RENAMED_PIPELINE_FLAGS[flag]}')
            flag = RENAMED_PIPELINE_FLAGS[flag]
            arg = flag + equals + value
        if flag in RENAMED_PIPELINE_FLAGS.values():
            if flag in seen:
                old = next(old for old, new in RENAMED_PIPELINE_FLAGS.items() if new == flag)
                raise FlareSRError(f'{flag} is given twice ({old} is its former name); give it once')
            seen.add(flag)
        renamed.append(arg)
    return renamed, warnings


def pipeline_parser():
    parser = ArgumentParser(
        description='Train the three stages in one command: I Pix2Pix -> II post net (HINet or NAFNet) -> III the '
        'post net on stage-I outputs. Rerun the same command to resume; finished stages are skipped '
        '(flare_sr/pipeline/stages.py). The former flags --main, --phase1, --phase2 still work.')
    parser.add_argument('--stage1', required=True, help='stage I option file (Pix2PixModel), e.g. options/pix2pix.yml')
    parser.add_argument('--stage2', required=True,
                        help='stage II option file (HINetModel), e.g. options/hinet_phase1.yml')
    parser.add_argument('--stage3', required=True,
                        help='stage III option file (HINetModel, with stage3_source), e.g. options/hinet_phase2.yml')
    parser.add_argument('--glow', metavar='FILE',
                        help='glow stage option file (HINetModel on whole downscaled frames), trained beside the '
                        'others, e.g. options/tiny/glow.yml')
    parser.add_argument('--name', help='folder under experiments/ for resolved options and done markers')
    parser.add_argument('--quiet', action='store_true',
                        help="send each stage's console output to experiments/<name>/stage_<N>_console.txt")
    return parser


@exit_on_user_error
def pipeline_main(argv=None):
    """``flare_sr/train_pipeline.py --stage1 A.yml --stage2 B.yml --stage3 C.yml [--glow G.yml] [--name N]
    [--quiet]``."""
    argv, warnings = renamed_pipeline_flags(sys.argv[1:] if argv is None else argv)
    args = pipeline_parser().parse_args(argv)
    option_files = {'stage1': args.stage1, 'stage2': args.stage2, 'stage3': args.stage3, 'glow': args.glow}
    name = pipeline_name(option_files, args.name)  # a refused run says its error line alone
    for warning in warnings:
        print(warning, file=sys.stderr, flush=True)
    run_pipeline(option_files, name, args.quiet)


if __name__ == '__main__':  # ``python -m flare_sr.cli``: this module holds the commands, it is none of them
    sys.exit('error: flare_sr.cli is not a command: run flare-sr-train, flare-sr-test, flare-sr-infer or '
             'flare-sr-pipeline (or flare_sr/train.py, test.py, infer.py, train_pipeline.py)')
