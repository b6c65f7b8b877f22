"""What the entry-point scripts share: boolean flags and turning errors into messages.

The flags themselves are defined in the scripts, when they run, never at import time.
"""
import argparse
import sys
import traceback

from cifar10.config import Cifar10Error

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


def run(main, args):
    """Call main(args); a Cifar10Error becomes one paragraph on stderr and exit status 1.
    Returns the process exit status."""
    try:
        main(args)
    except Cifar10Error as e:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
