"""Errors the user can fix, the checks of folders named by flags, and stops by signal.

Every layer raises Cifar10Error for a problem the user can fix, and the entry points
(cifar10.cli) print it as one paragraph; SignalExit carries a stop by signal out to
them. Nothing here depends on the configuration or on TensorFlow.
"""
import datetime
import os
import signal
import sys
import tempfile
import time


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


class StopRequests:
    """Within it, SIGINT and SIGTERM only set `requested` (the signal's number), which
    the program's loop checks where stopping is safe; a second signal exits at once
    with 128 + its number, printing again_note on stderr.

    A KeyboardInterrupt raised wherever the signal lands, as Python's default handler
    does, could land inside TensorFlow's or the standard library's code and be lost
    or leave it half done; a flag is never lost.
    """
    POLL_SECS = 0.1  # how soon sleep notices a request

    def __init__(self, again_note="exiting at once"):
        self.requested = None
        self._again_note = again_note
        self._previous = {}

    def __enter__(self):
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def _handle(self, signum, frame):
        if self.requested is not None:
            print(f"{datetime.datetime.now()}: {signal.Signals(signum).name} again: {self._again_note}",
                  file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.requested = signum

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def raise_if_requested(self):
        """Raise SignalExit for the signal received, if one was."""
        if self.requested is not None:
            raise SignalExit(self.requested)

    def sleep(self, seconds):
        """Sleep for seconds, or less if a signal asks to stop (time.sleep alone goes on
        sleeping after a handler that does not raise, PEP 475)."""
        deadline = time.monotonic() + seconds
        while self.requested is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, self.POLL_SECS))


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
