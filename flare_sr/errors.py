"""One exception type for mistakes a user can fix (bad files, bad options, no room on disk).

Entry points catch it and print ``error: <message>`` with a non-zero exit instead of a traceback,
so every message must name the file or option at fault and say what is wrong with it. Their command lines
use ``ArgumentParser``, whose mistakes are reported the same way.
"""
import argparse
import functools
import os
import re
import sys


class FlareSRError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def exit_on_user_error(main):
    """Decorate a command-line ``main``: print a FlareSRError as one line and exit with status 2; Ctrl-C is
    ``interrupted`` (with the interrupt's message: how to go on, where known) and status 130."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except FlareSRError as error:
            print(f'error: {error}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:  # its message, if any, says how to go on (a training run's resume)
            print('interrupted' + (f': {interrupt}' if str(interrupt) else ''), file=sys.stderr)
            sys.exit(130)

    return wrapper


def expand_home(value):
    """``value`` with a leading ``~`` or ``~user`` as that home folder (``os.path.expanduser``); others as given."""
    return os.path.expanduser(value) if isinstance(value, str) and value.startswith('~') else value


class _Probe(Exception):
    """Raised by ``ArgumentParser.error`` while it looks for unrecognized arguments."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error format: a bad command line is one ``error: <what>`` line and exit status 2
    (argparse prints its whole usage block); ``--help`` is unchanged. A missing required flag is said together with
    any unrecognized argument (``--phase3`` for ``--stage3``), which argparse would not mention. A value that starts
    with ``~`` is in the home folder, as in option files, also where the shell leaves it (``--out=~/x``, quoted)."""

    _argv, _probing = None, False

    def parse_known_args(self, args=None, namespace=None):
        if not self._probing:
            self._argv = list(sys.argv[1:] if args is None else args)
        parsed, extras = super().parse_known_args(args, namespace)
        for key, value in vars(parsed).items():
            setattr(parsed, key, list(map(expand_home, value)) if isinstance(value, list) else expand_home(value))
        return parsed, extras

    def _unrecognized(self):
        """The arguments no flag takes, found by parsing again with no flag required ([] if that fails too)."""
        required = [action for action in self._actions if action.required]
        self._probing = True
        try:
            for action in required:
                action.required = False
            return super().parse_known_args(self._argv, argparse.Namespace())[1]
        except _Probe:
            return []
        finally:
            for action in required:
                action.required = True
            self._probing = False

    def error(self, message):
        if self._probing:
            raise _Probe()
        if message.startswith('the following arguments are required') and self._argv is not None:
            unrecognized = self._unrecognized()
            if unrecognized:
                message = f'unrecognized arguments: {" ".join(unrecognized)}; {message}'
        choice = re.fullmatch(r"argument (\S+): invalid choice: '?(.*?)'? \(choose from (.*)\)", message)
        if choice:
            flag, value, choices = choice.groups()
            allowed = ', '.join(re.findall(r"[^', ]+", choices))
            message = f'{flag.split("/")[-1]} {value}: not one of {allowed}'
        else:
            message = re.sub(r'^argument (\S+): ', lambda match: match.group(1).split('/')[-1] + ': ', message)
        self.exit(2, f'error: {message}\n')
