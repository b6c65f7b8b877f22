"""What the entry-point scripts share: boolean flags and turning errors into messages.

The flags themselves are defined in the scripts, when they run, never at import time.
"""
import argparse
import contextlib
import signal
import sys
import traceback

from cifar10.config import Cifar10Error, SignalExit

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _parse_bool(text):
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use true or false")


def add_bool_flag(parser, name, help, default=False):
    """A boolean flag: `--name` or `--name=true` turns it on, `--name=false` off."""
    parser.add_argument(f"--{name}", type=_parse_bool, nargs="?", const=True, default=default, help=help)


def add_verbose_flag(parser):
    add_bool_flag(parser, "verbose", "On an error, also print the Python traceback.")


def _raise_signal_exit(signum, frame):
    raise SignalExit(signum)


@contextlib.contextmanager
def sigterm_raises():
    """Within it, SIGTERM raises SignalExit in the main thread, as SIGINT raises
    KeyboardInterrupt, so that partial downloads, extractions and exports are removed
    by their own clean-up code before the program exits."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_signal_exit)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(main, args):
    """Call main(args) and return the process exit status: 0 when it returns; 1 for a
    Cifar10Error, printed as one paragraph on stderr; 128 + N after signal N (130 for
    Ctrl-C, 143 for SIGTERM)."""
    try:
        with sigterm_raises():
            main(args)
    except Cifar10Error as e:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    except SignalExit as e:
        print(str(e) or f"stopped by {signal.Signals(e.signum).name}", file=sys.stderr)
        return 128 + e.signum
    return 0
