"""The three training stages in one run: I Pix2Pix (main) -> II post net (HINet or NAFNet) on the inputs ->
III the post net on stage-I outputs.

The command line is ``flare_sr/train_pipeline.py`` (``flare-sr-pipeline``, flare_sr/cli.py):

    python flare_sr/train_pipeline.py --stage1 options/pix2pix.yml --stage2 options/hinet_phase1.yml \
        --stage3 options/hinet_phase2.yml

Each stage is ``flare_sr/train.py -opt <resolved yml> --auto_resume`` in a subprocess, so a stage
that was interrupted resumes from its last training state, and a finished stage (its
``net_g_latest.pth`` plus a done marker) is skipped. What a stage needs from the previous one is
derived, never hand-edited (``DERIVED``), and the resolved option files are kept under
``experiments/<--name>/`` (default ``pipeline_<stage-III name>``):
- stage III's ``path.pretrain_network_g`` <- stage II's ``net_g_latest.pth`` (weights; the
  optimizer and schedule start afresh with stage III's own settings);
- stage III's data <- stage I's checkpoint through ``stage3_source.main_opt`` / ``main_checkpoint``
  (flare_sr/pipeline/stage3_data.py, cached by the checkpoint's sha256);
- with ``stage3_source.cross_fit``, K fold models (stages I.1 .. I.K: stage I's options, each without one fold
  of the photos, ``cross_fit.parallel`` at a time) train after stage I, and ``stage3_source.fold_checkpoints``
  <- their checkpoints (flare_sr/pipeline/cross_fit.py).
With ``--glow FILE`` the glow stage (G: CascadeModel's whole-frame net, trained on SyntheticFlareDataset's
``downscale_to`` frames) needs nothing from the others, so it trains beside them from the start, on half the CPU
threads (``thread_share(2)``); stages I-III get the rest, split among the fold models that train together, whether
or not G still runs, so a stage's numerics do not depend on G's timing. On 2 cores that is one thread each: the
demo's small steps are slower on 2 threads than on 1, and a 2-thread stage beside G waits for the core G holds
(2.4 times its step time; scripts/bench/bench_pipeline.py, docs/benchmarks.md). No more stages train at once than
there are threads (``run_stages``): beside G on 2 cores the fold models train in turn, on one thread each.
The option files may leave these keys out; a value that differs from the derived one is overridden, with one
``warning:`` line each (standalone ``train.py`` runs read them from the file).
It ends with a table of each stage's last validation PSNR/SSIM and the raw input's, from its metrics.json, and its
training time (wall seconds to its own end, also for the glow stage, from its done marker).
A failed stage is a FlareSRError (rerun the same command to resume).
"""
import io
import json
import os
import subprocess
import sys
import threading
import time
from os import path as osp

import yaml

from flare_sr.errors import FlareSRError
from flare_sr.pipeline.cross_fit import (beside_share, cross_fit_settings, fold_options, fold_selection,
                                         fold_training_lists, selection_members, thread_share, write_text)
from flare_sr.pipeline.stage3_data import ensure_stage3_data, select_pairs
from flare_sr.utils.atomic import atomic_path
from flare_sr.utils.options_check import check_options, load_option_file, stage3_source_problems
from flare_sr.utils.run_folder import archive, check_name, lock_run, run_in_use
from flare_sr.utils.safe_yaml import plain

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # the repository: experiments/ lives here

STAGES = (('I', 'stage1'), ('II', 'stage2'), ('III', 'stage3'))  # (label in prose and logs, key in code)
# What each stage trains, and with which model_type: a file given for the wrong stage would train the wrong role.
STAGE_ROLES = {'stage1': ('Pix2PixModel', 'the main network'),
               'stage2': ('HINetModel', 'the post network on the flared inputs'),
               'stage3': ('HINetModel', 'the post network on stage-I outputs'),
               'glow': ('HINetModel', 'the glow network on whole downscaled frames')}
GLOW = ('G', 'glow')  # the optional stage, trained beside the others (``--glow``)
# Keys of the stage-III file the pipeline fills in: (section, key, what it is derived from).
DERIVED = (('path', 'pretrain_network_g', "stage II's checkpoint"),
           ('stage3_source', 'main_opt', "stage I's option file"),
           ('stage3_source', 'main_checkpoint', "stage I's checkpoint"),
           ('stage3_source', 'fold_checkpoints', "the fold models' checkpoints"))  # with cross_fit only


def experiment_dir(opt):
    return osp.join(ROOT, 'experiments', opt['name'])


def latest_checkpoint(opt):
    return osp.join(experiment_dir(opt), 'models', 'net_g_latest.pth')


def write_yaml(path, opt):
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as handle:
            yaml.safe_dump(plain(opt), handle, sort_keys=False)


def last_validation(opt):
    """{'psnr': x, 'ssim': y, 'input_psnr': z, ...}: the means of the stage's newest validation (its last dataset)
    in ``experiments/<name>/metrics.json`` (flare_sr/models/tiled_validation.py), or {} when there is none."""
    try:
        with open(osp.join(experiment_dir(opt), 'metrics.json'), encoding='utf-8') as handle:
            validations = json.load(handle).get('validations') or []
    except (OSError, ValueError, AttributeError):
        return {}
    if not validations or not validations[-1].get('datasets'):
        return {}
    record = list(validations[-1]['datasets'].values())[-1]
    metrics = {}
    for name, mean in record['mean'].items():
        for role, prefix in (('output', ''), ('input', 'input_')):
            if mean.get(role) is not None:
                metrics[prefix + name] = float(mean[role])  # "inf" for identical images
    return metrics


def read_marker(marker):
    """A stage's done marker ({'experiment', 'checkpoint', 'finished', 'seconds', 'options'}: its wall seconds, from
    the start of the run that finished it to its process's end; the options it trained with), or {} when there is none
    or it is unreadable."""
    try:
        with open(marker, encoding='utf-8') as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


# What decides a stage's weights; validation, logging, the launch and the speed settings (LOADER_KEYS, SPEED_KEYS:
# the same training, its sums in another order at most) do not (stage III's ``stage3_source`` is consumed before it
# trains, into its data)
TRAINED_KEYS = ('model_type', 'manual_seed', 'train')
TRAINED_PATH_KEYS = ('pretrain_network_', 'strict_load_', 'param_key_')
LOADER_KEYS = ('num_worker_per_gpu', 'prefetch_mode', 'pin_memory', 'persistent_workers', 'num_prefetch_queue')
SPEED_KEYS = ('channels_last',)  # in ``train``


def trained_options(opt):
    """The options a stage trains with, as its done marker keeps them: ``TRAINED_KEYS`` (but ``train``'s speed
    settings), the networks, the training set (but its loader's) and the weights it starts from, in JSON's types,
    paths inside the repository relative to it (a moved or renamed clone trained with the same options)."""
    kept = {key: value for key, value in opt.items() if key in TRAINED_KEYS or str(key).startswith('network_')}
    if isinstance(kept.get('train'), dict):
        kept['train'] = {key: value for key, value in kept['train'].items() if key not in SPEED_KEYS}
    train_set = (opt.get('datasets') or {}).get('train')
    kept['datasets'] = {'train': {key: value for key, value in train_set.items() if key not in LOADER_KEYS}
                        if isinstance(train_set, dict) else train_set}
    kept['path'] = {key: value for key, value in (opt.get('path') or {}).items()
                    if str(key).startswith(TRAINED_PATH_KEYS)}
    text = json.dumps(plain(kept), default=str)
    return json.loads(text.replace(json.dumps(ROOT + os.sep)[1:-1], ''))  # JSON-escaped, as in the text


def option_changes(before, after, prefix=''):
    """Each key path whose value differs between two option dicts, as ``'train.total_iter: 8 then, 12 now'``."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [] if before == after else [f'{prefix}: {_shown(before)} then, {_shown(after)} now']
    changes = []
    for key in list(before) + [key for key in after if key not in before]:
        path = f'{prefix}.{key}' if prefix else str(key)
        changes += option_changes(before.get(key), after.get(key), path)
    return changes


def _shown(value, width=60):
    """``value``'s repr, its middle cut out when long: paths differ at their ends."""
    text = repr(value)
    return text if len(text) <= width else f'{text[:width // 3]}...{text[-(2 * width // 3):]}'


def check_done_stages(planned, option_files, pipeline_dir):
    """A finished stage is skipped, so one whose options changed since it trained is refused in one line naming the
    keys (it was skipped as done, its edit ignored, and its resolved copy rewritten as if it had trained so). Done
    markers written before they kept the options are taken as they are."""
    for label, _, resolved_path, opt in planned:
        marker = osp.join(pipeline_dir, f'stage_{label}.done')
        trained = read_marker(marker).get('options')
        changes = option_changes(trained, trained_options(opt)) if trained is not None else []
        if changes and _marked_done(marker, opt):
            key = dict((GLOW,) + STAGES)[label.split('.')[0]]  # fold models I.k are stage I's file
            raise FlareSRError(
                f'--{key} {option_files[key]}: stage {label} ({opt["name"]}) finished with other options '
                f'({"; ".join(changes[:3])}{"; ..." if len(changes) > 3 else ""}), and a finished stage is skipped: '
                f'give the options it was trained with (in {osp.relpath(resolved_path)}), or move '
                f'{osp.relpath(experiment_dir(opt))} and {osp.relpath(marker)} aside (and those of the later stages, '
                'trained from it) to train it anew')


def _marked_done(marker, opt):
    """Whether ``marker`` says that ``opt``'s experiment finished (a fold model of another K has the same label)."""
    return read_marker(marker).get('experiment') == opt['name']


def _start_stage(label, title, resolved_path, opt, pipeline_dir, quiet=False, threads=None):
    """Start training one stage in a subprocess (resuming it if it was interrupted); None when its done marker and
    checkpoint exist. ``threads``: OMP_NUM_THREADS of the subprocess (default: inherited). Returns the handles
    ``_finish_stage`` takes: the process, its console sink and path, its start time and ``_end_clock``."""
    if _marked_done(osp.join(pipeline_dir, f'stage_{label}.done'), opt) and osp.isfile(latest_checkpoint(opt)):
        print(f'stage {label} ({title}, {opt["name"]}): done, skipped', flush=True)
        return None
    print(f'stage {label} ({title}, {opt["name"]}): training with {osp.relpath(resolved_path)}', flush=True)
    command = [sys.executable, osp.join(ROOT, 'flare_sr', 'train.py'), '-opt', resolved_path, '--auto_resume']
    console = osp.join(pipeline_dir, f'stage_{label}_console.txt')
    sink = open(console if quiet else os.devnull, 'a', encoding='utf-8')
    env = None if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads))
    started = time.time()
    process = subprocess.Popen(command, stdout=sink if quiet else None, stderr=subprocess.STDOUT if quiet else None,
                               env=env)
    return process, sink, console, started, _end_clock(process)


def _end_clock(process):
    """A thread that waits for ``process`` and keeps the time it ended as ``.ended``: a stage trained beside others
    is waited for only after them."""
    def wait():
        process.wait()
        clock.ended = time.time()

    clock = threading.Thread(target=wait, daemon=True)
    clock.start()
    return clock


def _finish_stage(label, opt, pipeline_dir, handles, quiet=False):
    """Wait for a started stage; write its done marker (with its wall seconds), or raise naming where its output
    is."""
    process, sink, console, started, clock = handles
    with sink:
        code = process.wait()
    clock.join()
    checkpoint = latest_checkpoint(opt)
    if code == 2:  # train.py refused (flare_sr.errors): resuming as it is would be refused again
        where = f'its error line, in {osp.relpath(console)},' if quiet else 'the error line above'
        # no file to mend when another run (a standalone train.py of this name) holds the experiment
        if run_in_use(osp.join(ROOT, 'experiments'), opt['name']):
            raise FlareSRError(f'stage {label} ({opt["name"]}) was refused: {where} names another run that is using '
                               f'{osp.relpath(experiment_dir(opt))}; let it finish or stop it, then rerun the same '
                               'command')
        flag = '--' + dict((GLOW,) + STAGES)[label.split('.')[0]]  # fold models I.k are stage I's file
        raise FlareSRError(f'stage {label} ({opt["name"]}) was refused: {where} names the pipeline\'s resolved copy '
                           f'of the {flag} file; mend that file, then rerun the same command')
    if code != 0:
        where = console if quiet else experiment_dir(opt)
        raise FlareSRError(f'stage {label} ({opt["name"]}) stopped with exit status {code}; rerun the same command '
                           f'to resume it (output in {osp.relpath(where)})')
    if not osp.isfile(checkpoint):
        raise FlareSRError(f'stage {label} ({opt["name"]}) ended without {checkpoint}')
    with atomic_path(osp.join(pipeline_dir, f'stage_{label}.done')) as tmp:
        with open(tmp, 'w', encoding='utf-8') as handle:
            json.dump({'experiment': opt['name'], 'checkpoint': checkpoint, 'finished': clock.ended,
                       'seconds': round(clock.ended - started, 1), 'options': trained_options(opt)}, handle)


def run_stages(planned, pipeline_dir, quiet=False, parallel=1, threads=None):
    """Train the stages of ``planned`` ([(label, title, resolved path, opt)], written already), ``parallel`` at a time
    with ``threads`` CPU threads (default: this process's) split among them, each resuming or skipped as
    ``_start_stage`` says. Stages run side by side always write their output to ``stage_<label>_console.txt``.
    At most one stage per thread runs at once: more would share cores (beside the glow stage on 2 cores, two fold
    models and G on 2 cores took G from 0.36 to 0.55-0.72 s a step), and each gets one thread either way, so its
    numerics are the same."""
    parallel = max(1, min(parallel, thread_share(1, threads)))
    for first in range(0, len(planned), parallel):
        batch = planned[first:first + parallel]
        together = len(batch) > 1
        share = thread_share(len(batch), threads) if together or threads is not None else None
        started = [(label, opt, _start_stage(label, title, path, opt, pipeline_dir, quiet or together, share))
                   for label, title, path, opt in batch]
        failures = []
        for label, opt, handles in started:  # every started stage is waited for before one failure is said
            if handles is not None:
                try:
                    _finish_stage(label, opt, pipeline_dir, handles, quiet or together)
                except FlareSRError as error:
                    failures.append(error)
        if failures:
            raise failures[0]


def stage_title(label, opt):
    """'Pix2Pix' for stage I, the post net's arch (HINet, NAFNet, ...) for stages II and III, 'glow ' + its arch for
    the glow stage; 'post net' / 'glow net' for a file without ``network_g.type`` (refused right after)."""
    if label == 'I':
        return 'Pix2Pix'
    network = opt.get('network_g')
    arch = str(network['type']) if isinstance(network, dict) and network.get('type') else None
    if label == GLOW[0]:
        return f'glow {arch or "net"}'
    return arch or 'post net'


def derive_stage3_keys(stage3, option_file, derived_values):
    """Fill the DERIVED keys of the stage-III options in place (sections are replaced, never written into).

    A value the file sets to something else is overridden, with one warning line naming the key (paths are
    compared as absolute paths, since relative ones start at the working directory).
    """
    def same(given, value):
        if isinstance(value, list):
            return isinstance(given, list) and len(given) == len(value) and all(map(same, given, value))
        return isinstance(given, str) and osp.abspath(given) == osp.abspath(value)

    for section, key, origin in DERIVED:  # check_stage_files has made sure stage3_source is a mapping
        if key not in derived_values:
            continue
        holder = dict(stage3.get(section) or {})
        value = derived_values[key]
        given = holder.get(key)
        if given is not None and not same(given, value):
            shown = ', '.join(map(osp.relpath, value)) if isinstance(value, list) else osp.relpath(value)
            print(f'warning: {option_file}: {section}.{key}: {given} is overridden by {origin} '
                  f'{shown} (train_pipeline derives it)', file=sys.stderr, flush=True)
        holder[key] = value
        stage3[section] = holder


def given_stages(option_files):
    """(label, key) of the stages ``option_files`` names: the three, and the glow stage where ``glow`` is set."""
    return STAGES + ((GLOW,) if option_files.get('glow') else ())


def check_stage_files(option_files):
    """Load the option files ({'stage1', 'stage2', 'stage3'[, 'glow']}: paths) and check that each fits its stage
    (``STAGE_ROLES``; only stage III has ``stage3_source``; the glow stage trains on whole downscaled frames) and that
    their names differ, before anything trains. Returns {key: options}; one FlareSRError naming the flag and the file
    otherwise."""
    stages = given_stages(option_files)
    opts = {key: load_option_file(option_files[key]) for _, key in stages}
    problems = []
    for label, key in stages:
        where = f'--{key} {option_files[key]}'
        model_type, (expected, role) = opts[key].get('model_type'), STAGE_ROLES[key]
        train = (opts[key].get('datasets') or {}).get('train') if isinstance(opts[key].get('datasets'), dict) else {}
        if model_type != expected:
            problems.append(f'{where}: model_type {model_type}; stage {label} trains {role} ({expected})')
        elif key in ('stage2', 'glow') and 'stage3_source' in opts[key]:
            problems.append(f'{where}: has stage3_source, so it trains on stage-I outputs (stage III); stage '
                            f'{label} trains on the flared inputs (swapped with --stage3?)')
        elif key == 'stage3' and not isinstance(opts[key].get('stage3_source'), dict):
            problems.append(f'{where}: stage3_source: missing (stage III trains on stage-I outputs)')
        elif key == 'glow' and not (isinstance(train, dict) and train.get('downscale_to') is not None):
            problems.append(f'{where}: datasets.train.downscale_to: missing; the glow stage trains on whole frames, '
                            'downscaled (options/glow.yml: real pairs; options/tiny/glow.yml: synthetic flare)')
    if problems:
        raise FlareSRError('; '.join(problems))
    names = [opts[key].get('name') for _, key in stages]
    for _, key in stages:  # the pipeline writes stage_<label>_<name>.yml before the stage's own check
        check_name(opts[key].get('name'), f'--{key} {option_files[key]}: name', 'experiments/')
    if len(set(names)) != len(stages):
        raise FlareSRError(f'the {len(stages)} option files need different `name`s (got '
                           f'{", ".join(map(str, names))}): each stage trains in experiments/<name>/')
    return opts


def check_stage_options(option_files):
    """The option checker, as their train.py will run it, on the user's files of stages I and II and the glow stage,
    before anything trains. Each stage's train.py reads the pipeline's resolved copy
    (``experiments/<pipeline>/stage_<label>_<name>.yml``), so its own error line would name that copy instead of the
    file to mend, and stage II's and the glow stage's would come only when their turn ends. One FlareSRError naming
    each flag at fault. Stage III's checkpoints and data are derived later: it is checked when it starts, and a
    refusal then is said with its flag (``_finish_stage``); only what its ``stage3_source`` makes of stage I
    (``stage3_source_problems``: the tile on stage I's networks, the patches its crops are cut from) is checked here."""
    problems = []
    for key in ('stage1', 'stage2', 'glow'):
        if option_files.get(key):
            try:
                check_options(load_option_file(option_files[key]), option_files[key], stream=io.StringIO())
            except FlareSRError as error:
                problems.append(f'--{key} {error}')
    problems += [f"--stage3 {option_files['stage3']}: {line}" for line in stage3_source_problems(
        load_option_file(option_files['stage3']), load_option_file(option_files['stage1']))]
    if problems:  # all files at once: a relative path that is wrong in one is often wrong in the others
        raise FlareSRError('; '.join(problems))


def pipeline_name(option_files, name=None):
    """The pipeline's folder under experiments/: ``name`` (``--name``), by default ``pipeline_<stage-III name>``,
    after ``check_stage_files``. One folder name, and no stage's: a stage's new run would archive that folder."""
    opts = check_stage_files(option_files)
    name = f'pipeline_{opts["stage3"]["name"]}' if name is None else name
    check_name(name, '--name', 'experiments/')
    if name in {opts[key]['name'] for key in opts}:
        raise FlareSRError(f'--name {name}: is also the name of a stage, which trains in experiments/{name}/; give '
                           'the pipeline its own name')
    return name


def resolve(option_files, pipeline_dir):
    """Load, check (``check_stage_files``) and cross-link the option files ({'stage1', 'stage2', 'stage3'[, 'glow']}:
    paths); derive stage III's DERIVED keys. With ``stage3_source.cross_fit`` the fold models (labels I.1 .. I.K)
    follow stage I, and their training lists are written into ``pipeline_dir``; the glow stage (G) comes last.
    Returns [(label, title, resolved path, opt)] and the cross_fit settings (None when off)."""
    opts = check_stage_files(option_files)
    source = opts['stage3']['stage3_source']
    cross_fit = cross_fit_settings(source, option_files['stage3'])
    folds = []
    if cross_fit is not None:
        kind, lists = fold_training_lists(cross_fit, opts['stage1'], option_files['stage1'],
                                          select_pairs(source, option_files['stage3']))
        os.makedirs(pipeline_dir, exist_ok=True)
        planned_folds, stale, unrecorded = [], [], False
        for fold, units in enumerate(lists):
            selection, text = fold_selection(kind, pipeline_dir, fold, len(lists), units)
            opt = fold_options(opts['stage1'], fold, len(lists), kind, selection)
            changed = fold_change(selection, text, opt, osp.join(pipeline_dir, f'stage_I.{fold + 1}.done'))
            stale += changed
            unrecorded = unrecorded or bool(changed and not recorded_selections(selection))
            planned_folds.append((selection, text, opt))
        if stale:  # every fold at once, so that one run says all there is to delete
            delete = f'delete {" and ".join(osp.relpath(path) for path in stale)} to train them again'
            if unrecorded:  # e.g. a pipeline of another --name trained them: nothing says their photos changed
                raise FlareSRError(f'{pipeline_dir}: the fold models exist, but this pipeline holds no record of the '
                                   'photos they were trained on (a pipeline of another --name started them, or its '
                                   f'fold files were removed): rerun with the --name that trained them, or {delete}')
            raise FlareSRError(f'{pipeline_dir}: fold models were trained on other photos than their folds now hold; '
                               f'{delete}')
        for selection, text, opt in planned_folds:
            write_text(selection, text)
            for path in recorded_selections(selection):  # an equal record of the other kind (fold_change said so)
                if path != selection:
                    os.remove(path)
            folds.append(opt)
        if (opts['stage1'].get('path') or {}).get('pretrain_network_g'):
            print(f"note: {option_files['stage1']}: path.pretrain_network_g: the fold models start from it too; "
                  'weights trained on these photos would let them see every photo', file=sys.stderr, flush=True)
    derived = {'pretrain_network_g': latest_checkpoint(opts['stage2']),
               'main_opt': osp.abspath(option_files['stage1']),
               'main_checkpoint': latest_checkpoint(opts['stage1'])}
    if folds:
        derived['fold_checkpoints'] = [latest_checkpoint(opt) for opt in folds]
    derive_stage3_keys(opts['stage3'], option_files['stage3'], derived)
    planned = []
    for label, key in given_stages(option_files):
        resolved_path = osp.join(pipeline_dir, f'stage_{label}_{opts[key]["name"]}.yml')
        planned.append((label, stage_title(label, opts[key]), resolved_path, opts[key]))
        if key == 'stage1':
            for fold, opt in enumerate(folds, start=1):
                planned.append((f'I.{fold}', f'Pix2Pix, fold {fold}/{len(folds)}',
                                osp.join(pipeline_dir, f'stage_I.{fold}_{opt["name"]}.yml'), opt))
    return planned, cross_fit


def archive_stale_stage(label, opt, pipeline_dir):
    """A stage whose training data was just rebuilt must not be skipped as done nor resumed on the new data: its
    experiment folder moves aside as BasicSR moves one (``<name>_archived_<time>``; nothing is deleted), its done
    marker goes, and it trains anew."""
    folder = experiment_dir(opt)
    if not osp.isdir(folder):
        return
    archived = archive(folder)  # a free name, even for two archives in one second
    marker = osp.join(pipeline_dir, f'stage_{label}.done')
    if osp.isfile(marker):
        os.remove(marker)
    print(f'note: stage {label}: its data was rebuilt, so {osp.relpath(folder)} (trained on the old data) moved to '
          f'{osp.relpath(archived)}; stage {label} trains anew', file=sys.stderr, flush=True)


def recorded_selections(selection):
    """The selection files recorded for a fold model, of either kind (``.txt`` or ``.csv``)."""
    base = osp.splitext(selection)[0]
    return [path for path in (f'{base}.txt', f'{base}.csv') if osp.isfile(path)]


def fold_change(selection, text, opt, marker):
    """What to delete before fold model ``opt`` may train on the new selection ``text``: [] when it has not started
    (no experiment folder) or started on the same photos (``selection_members``: order, and whether stage I reads a
    folder or a split CSV, aside); else its experiment folder, and its done ``marker`` when that names it. A started
    model (trained, or interrupted: ``train.py --auto_resume`` would go on with it) on other photos, or without a
    record of them, would make in-sample outputs."""
    experiment = experiment_dir(opt)
    if not osp.isdir(experiment):
        return []
    new = selection_members(text, selection)
    recorded = recorded_selections(selection)
    same = True
    for path in recorded:
        with open(path, encoding='utf-8', newline='') as handle:
            same = same and selection_members(handle.read(), path) == new
    if recorded and same:
        return []
    return [experiment] + ([marker] if _marked_done(marker, opt) else [])


def summary_table(planned, pipeline_dir):
    """Each stage's last validation (flare_sr/models/tiled_validation.py's metrics.json), its checkpoint and its
    training time (wall seconds of the run that finished it, from its done marker)."""
    rows = [('stage', 'experiment', 'val PSNR', 'val SSIM', 'input PSNR', 'time', 'checkpoint')]
    for label, title, _, opt in planned:
        metrics = last_validation(opt)
        seconds = read_marker(osp.join(pipeline_dir, f'stage_{label}.done')).get('seconds')

        def number(name, digits):
            return f'{metrics[name]:.{digits}f}' if name in metrics else '-'

        rows.append((f'{label} {title}', opt['name'], number('psnr', 2), number('ssim', 4), number('input_psnr', 2),
                     f'{seconds:.0f} s' if isinstance(seconds, (int, float)) else '-',
                     osp.relpath(latest_checkpoint(opt))))
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def run_pipeline(option_files, name=None, quiet=False):
    """Train the stages of ``option_files`` ({'stage1', 'stage2', 'stage3'}: option file paths), resuming or
    skipping each, then print the summary table. ``name``: folder under experiments/ (default
    ``pipeline_<stage-III name>``)."""
    start = time.time()
    name = pipeline_name(option_files, name)
    lock_run(osp.join(ROOT, 'experiments'), name)  # a second pipeline of this name stops here, in one line
    check_stage_options(option_files)
    pipeline_dir = osp.join(ROOT, 'experiments', name)
    planned, cross_fit = resolve(option_files, pipeline_dir)
    check_done_stages(planned, option_files, pipeline_dir)  # before any resolved copy is rewritten
    folds = [entry for entry in planned if entry[0].startswith('I.')]
    glow = [entry for entry in planned if entry[0] == GLOW[0]]
    beside, rest = None, None
    for label, title, resolved_path, opt in glow:  # from the start, beside the others (module docstring)
        write_yaml(resolved_path, opt)
        threads, rest = beside_share()  # the rest also when G is done: each stage's numerics stay fixed
        beside = _start_stage(label, title, resolved_path, opt, pipeline_dir, quiet=True, threads=threads)
    pending = [(glow[0][3], beside)] if beside is not None else []
    try:
        _run_in_turn(planned, folds, cross_fit, pipeline_dir, quiet, pending, rest)
    except FlareSRError:
        for opt, handles in pending:  # a started stage is waited for before the first failure is said
            try:
                _finish_stage(GLOW[0], opt, pipeline_dir, handles, quiet=True)
            except FlareSRError:
                pass
        raise
    for opt, handles in pending:
        _finish_stage(GLOW[0], opt, pipeline_dir, handles, quiet=True)
    print(summary_table(planned, pipeline_dir))
    print(f'pipeline {name}: {len(planned)} stages done in {time.time() - start:.0f} s; resolved options in '
          f'{osp.relpath(pipeline_dir)}')


def _run_in_turn(planned, folds, cross_fit, pipeline_dir, quiet, pending=(), threads=None):
    """Stages I (then its fold models, ``cross_fit.parallel`` at a time), II and III, one after the other, on
    ``threads`` CPU threads (default: this process's). ``pending``: [(opt, started handles)] of the glow stage beside
    them; one that failed stops the pipeline before the next stage starts, not after the last (it is taken off the
    list once waited for)."""
    for label, title, resolved_path, opt in planned:
        if label.startswith('I.') or label == GLOW[0]:
            continue  # the fold models train together right after stage I, below; the glow stage beside
        if pending and pending[0][1][0].poll() not in (None, 0):
            glow_opt, handles = pending.pop()
            _finish_stage(GLOW[0], glow_opt, pipeline_dir, handles, quiet=True)  # raises, naming its console
        if label == 'III':
            if ensure_stage3_data(opt, resolved_path)[1]:
                archive_stale_stage(label, opt, pipeline_dir)
            opt = dict(opt)
            opt.pop('stage3_source')  # consumed here: the LMDBs it describes now exist
        write_yaml(resolved_path, opt)
        run_stages([(label, title, resolved_path, opt)], pipeline_dir, quiet, threads=threads)
        if label == 'I' and folds:
            for _, _, fold_path, fold_opt in folds:
                write_yaml(fold_path, fold_opt)
            run_stages(folds, pipeline_dir, quiet, cross_fit['parallel'], threads)
