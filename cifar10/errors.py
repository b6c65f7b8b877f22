"""Errors the user can fix, and the checks of folders named by flags.

Every layer raises Cifar10Error for a problem the user can fix, and the entry points
(cifar10.cli) print it as one paragraph; SignalExit carries a stop by signal out to
them. Nothing here depends on the configuration or on TensorFlow.
"""
import os
import tempfile


class Cifar10Error(Exception):
    """A problem the user can fix: the message names the file or flag and what to do.

    The entry points print it as one paragraph and exit with status 1, without a
    traceback (unless --verbose).
    """


class SignalExit(BaseException):
    """The program was asked to stop by signal signum (SIGINT or SIGTERM); the entry points
    exit with status 128 + signum, as a shell reports a process ended by that signal, so
    that job controllers see the run as unfinished. A BaseException, as KeyboardInterrupt,
    so that no `except Exception` swallows it and every `finally` cleans up on the way."""

    def __init__(self, signum, message=""):
        super().__init__(message)
        self.signum = signum


def check_writable_dir(path, flag):
    """Create folder path if needed and make sure files can be written in it; raises
    Cifar10Error naming the flag otherwise (as root, permissions alone do not stop us)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise Cifar10Error(f"Cannot write to {flag}={path}: {e.strerror}. Pass a folder you can write to, "
                           "or fix its permissions.") from e


# TensorFlow's checkpoint functions read these in a path as a file-name pattern
# (TensorFlow issue 34290): a folder named with them never finds its own checkpoints.
GLOB_CHARACTERS = "*?[\\"


def check_folder_flag(path, flag):
    """Raise Cifar10Error if path, the value of flag, holds a glob character."""
    found = [c for c in GLOB_CHARACTERS if c in path]
    if found:
        raise Cifar10Error(f"{flag}={path} contains {' and '.join(repr(c) for c in found)}, which TensorFlow reads "
                           "as a file-name pattern when it looks for checkpoints (TensorFlow issue 34290): "
                           "checkpoints there would never be found again. Pass a folder whose path has none of "
                           f"{' '.join(GLOB_CHARACTERS)}.")
