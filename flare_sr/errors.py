"""One exception type for mistakes a user can fix (bad files, bad options, no room on disk).

Entry points catch it and print ``error: <message>`` with a non-zero exit instead of a traceback,
so every message must name the file or option at fault and say what is wrong with it.
"""
import functools
import sys


class FlareSRError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def exit_on_user_error(main):
    """Decorate a command-line ``main``: print a FlareSRError as one line and exit with status 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except FlareSRError as error:
            print(f'error: {error}', file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print('interrupted', file=sys.stderr)
            sys.exit(130)

    return wrapper
