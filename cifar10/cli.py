"""What the entry-point scripts share: flags built from the config dataclasses, and
turning errors and signals into messages and exit statuses.

The flags are defined when a script runs, never at import time.
"""
import argparse
import contextlib
import dataclasses
import signal
import sys
import traceback

from cifar10.errors import Cifar10Error, SignalExit

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
    add_bool_flag(parser, "verbose", "Show all that TensorFlow prints, its start-up messages included (hidden "
                                     "by default), and on an error, the Python traceback.")


def verbose_requested(argv):
    """Whether the command-line arguments argv (a list of str, without the program's
    name) turn --verbose on, read before they are parsed: TensorFlow must be quieted,
    or not, before it is imported. As the flag parses it: --verbose, --verbose=true or
    --verbose true; the last one counts."""
    verbose = False
    for index, argument in enumerate(argv):
        if argument == "--":
            break
        if argument == "--verbose":
            following = argv[index + 1].lower() if index + 1 < len(argv) else ""
            verbose = following not in _FALSE
        elif argument.startswith("--verbose="):
            verbose = argument.partition("=")[2].lower() in _TRUE
    return verbose


def parser_for(config_class, description, only=None):
    """An argparse parser with a --<field> flag for each field of config_class (a config
    dataclass; only those named in only, if given), plus --verbose. A field's type and
    default are the flag's; its metadata 'help' is the flag's help; values are checked
    by the config itself, in one place. Boolean flags take --flag, --flag=true or
    --flag=false. description: the script's docstring."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for field in dataclasses.fields(config_class):
        if only is not None and field.name not in only:
            continue
        help = field.metadata["help"]
        if field.type is bool:
            add_bool_flag(parser, field.name, help, default=field.default)
        else:
            # A recipe is given by name; the config turns the name into the Recipe.
            flag_type = field.type if field.type in (int, float, str) else str
            default = getattr(field.default, "name", field.default)
            parser.add_argument(f"--{field.name}", type=flag_type, default=default, help=help)
    add_verbose_flag(parser)
    return parser


def main(config_class, action, description, argv=None):
    """A script's main: parse argv into a config_class object, call action(config) and
    return the exit status (see run)."""
    args = parser_for(config_class, description).parse_args(argv)
    return run(lambda parsed: action(config_from(config_class, parsed)), args)


def config_from(config_class, args):
    """The config_class object for parsed flags (Cifar10Error if a value is out of range)."""
    return config_class(**{field.name: getattr(args, field.name) for field in dataclasses.fields(config_class)})


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
