"""The commands the option files' headers, the README and docs/ give run as written: each script exists, each
option file they name exists (or is one the text tells you to make), test.py is never pointed at a training file
(it refuses one: 'a training set cannot be tested') nor train.py at a test file, and every flag is one the script
reads. Read from the text alone: nothing runs."""
import glob
import importlib.util
import os
import re

from flare_sr.utils.options_check import load_option_file
from tests.helpers import REPO

# option files the docs tell the user to make from someone else's file (the text says where)
USER_MADE = {'options/flare7kpp_uformer.yml', 'options/gopro_hinet_flare.yml'}
COMMAND = re.compile(r'(?:python|torchrun(?: --\S+)*)\s+(?:-m\s+(?P<module>flare_sr[\w.]*)|'
                     r'(?P<script>(?:flare_sr|scripts)/[\w/]+\.py))(?P<args>[^`#\n]*)')
OPTION_FILE = re.compile(r'(?:-opt|--stage[123]|--opt)\s+(\S+\.yml)')
FLAG = re.compile(r'(?<![\w./-])(--?[a-z][\w-]*)')
# flags BasicSR's own parser reads for train.py / test.py (basicsr/utils/options.py)
BASICSR_FLAGS = {'-opt', '--launcher', '--auto_resume', '--debug', '--local_rank', '--local-rank', '--force_yml'}
# a flag of an earlier bench, quoted as such in docs/benchmarks.md (today's default)
FORMER_FLAGS = {'--keep-cpu-memory'}


def documented_commands():
    """[(where, script or module, args)] of every command line in the option headers, README.md and docs/*.md,
    continuation lines (a trailing backslash) joined."""
    found = []
    files = sorted(glob.glob(os.path.join(REPO, 'options', '**', '*.yml'), recursive=True))
    files += [os.path.join(REPO, 'README.md')] + sorted(glob.glob(os.path.join(REPO, 'docs', '*.md')))
    for path in files:
        text = open(path, encoding='utf-8').read()
        if path.endswith('.yml'):  # the header comments only
            text = '\n'.join(line.lstrip('#') for line in text.splitlines() if line.startswith('#'))
        text = re.sub(r'\\\n\s*#?', ' ', text)
        for number, line in enumerate(text.splitlines(), start=1):
            for match in COMMAND.finditer(line):
                found.append((f'{os.path.relpath(path, REPO)}: {match.group(0).strip()}',
                              match['script'] or match['module'], match['args']))
    return found


def test_every_documented_command_names_a_script_files_and_flags_that_exist():
    commands = documented_commands()
    assert len(commands) > 30  # the parser finds them
    problems = []
    for where, target, args in commands:
        if target.endswith('.py'):
            script = os.path.join(REPO, target)
            if not os.path.isfile(script):
                problems.append(f'{where}: no {target}')
                continue
            source = open(script, encoding='utf-8').read()
            if target.startswith('scripts/bench/'):  # the benches share their arguments (add_loop_arguments)
                source += ''.join(open(path, encoding='utf-8').read()
                                  for path in glob.glob(os.path.join(REPO, 'scripts', 'bench', '*.py')))
            if target in ('flare_sr/train.py', 'flare_sr/test.py', 'flare_sr/infer.py', 'flare_sr/train_pipeline.py'):
                source += open(os.path.join(REPO, 'flare_sr', 'cli.py'), encoding='utf-8').read()
                source += open(os.path.join(REPO, 'flare_sr', 'basicsr_fixes.py'), encoding='utf-8').read()
        else:
            spec = importlib.util.find_spec(target)
            if spec is None:
                problems.append(f'{where}: no module {target}')
                continue
            source = open(spec.origin, encoding='utf-8').read()
        for flag in FLAG.findall(args):
            if flag not in BASICSR_FLAGS | FORMER_FLAGS and f"'{flag}'" not in source:
                problems.append(f'{where}: {target} reads no {flag}')
        for option_file in OPTION_FILE.findall(args):
            if not option_file.startswith('options/') or option_file in USER_MADE:
                continue
            if not os.path.isfile(os.path.join(REPO, option_file)):
                problems.append(f'{where}: no {option_file}')
                continue
            datasets = load_option_file(os.path.join(REPO, option_file)).get('datasets') or {}
            trains = any(str(phase).startswith('train') for phase in datasets)
            if target == 'flare_sr/test.py' and trains:
                problems.append(f'{where}: {option_file} is a training file, which test.py refuses')
            if target == 'flare_sr/train.py' and not trains:
                problems.append(f'{where}: {option_file} has no datasets.train to train on')
    assert problems == [], '\n'.join(problems)
