"""What every program does first, before TensorFlow starts, and the line that says
where a run computes.

- begin(), at the top of each entry-point script: turns on oneDNN's CPU kernels on
  x86-64 (use_onednn), hides TensorFlow's start-up noise (unless --verbose) and lets
  each GPU's memory grow, so that a trainer and an evaluator share one GPU
  (tensorflow/models issues 892 and 1854).
- use_device(), for the evaluator's --device: keeps it off the GPU, or requires one.
- device_line(): 'training on 1 CPU, float32 compute', 'evaluating on 1 GPU (NVIDIA
  H200), float32 compute'.

TensorFlow reads TF_CPP_MIN_LOG_LEVEL and TF_ENABLE_ONEDNN_OPTS once, when it is
imported, so this module imports it only inside its functions, and begin() must run
before anything else imports it.
"""
import collections
import contextlib
import os
import platform
import re
import sys
import tempfile

from cifar10 import cli
from cifar10.errors import Cifar10Error

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# TensorFlow's C++ log by default: errors only. Its INFO and WARNING lines during a run
# are about its own workings ("Filling up shuffle buffer", a dataset that "will not be
# optimized"), not the user's run.
QUIET_LOG_LEVEL = "2"
# TensorFlow's start-up lines that report nothing wrong, printed whatever the log level
# (they come before its logging is set up) or at INFO: absl's notice that logging has
# not started, the CUDA stub's on a machine without a GPU driver, the CPU-instruction and
# oneDNN notes, and on a GPU machine the CUDA libraries' second registration (TensorFlow
# issue 62075).
NOISE = re.compile("|".join([
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"Could not find cuda drivers on your machine, GPU will not be used",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
    r"oneDNN custom operations are on",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
]))
NO_DRIVER = "Could not find cuda drivers on your machine"
# Where no driver is installed, TensorFlow's start of CUDA fails, as it must: noise
# there; but an error worth seeing where a driver is installed.
CUDA_START_FAILED = "failed call to cuInit"
PRECISIONS = {"float32": "float32 compute", "bfloat16": "bfloat16 compute",
              "float16": "float16 compute with loss scaling"}


def begin(argv=None):
    """Start TensorFlow for a program; call it at the top of each entry-point script,
    before anything imports TensorFlow. On x86-64 it computes with oneDNN's CPU kernels
    (use_onednn). Unless argv (the command-line arguments, default sys.argv[1:]) has
    --verbose: TensorFlow's C++ log shows errors only (unless
    TF_CPP_MIN_LOG_LEVEL is set, which is respected), and its start-up lines that report
    nothing wrong (NOISE) are hidden; everything else it prints still shows. Then every
    GPU's memory grows as needed (grow_gpu_memory). Where TensorFlow was imported before
    (a program of the user's, the tests), its start is left as it was."""
    verbose = cli.verbose_requested(sys.argv[1:] if argv is None else argv)
    hiding = contextlib.nullcontext()
    use_onednn()
    if "tensorflow" not in sys.modules and not verbose:
        os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LOG_LEVEL)
        hiding = _noise_hidden()
    with hiding:
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")  # where CUDA starts, and says so
    grow_gpu_memory()


def use_onednn():
    """Have TensorFlow compute on the CPU with oneDNN's kernels on an x86-64 machine,
    unless TF_ENABLE_ONEDNN_OPTS is set (which is respected: 0 keeps them off). Call it
    before anything imports TensorFlow; after that it changes nothing. TensorFlow turns
    them on by itself only on CPUs with AVX-512's neural-network instructions (VNNI,
    BF16) or AMX; on an AVX2-only CPU they make the training step about 1.5x faster
    (README, "oneDNN on every x86-64 CPU"). Other machines (ARM) keep TensorFlow's
    default."""
    if "tensorflow" not in sys.modules and platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault(ONEDNN_VARIABLE, "1")


def grow_gpu_memory():
    """Let TensorFlow take each GPU's memory as it needs it, rather than all of it at its
    start, so that another program (the evaluator beside the trainer) fits on the same
    GPU. Call it before TensorFlow's runtime starts (the first op): after that, and for a
    GPU split into logical devices (of fixed sizes), the GPUs stay as they are."""
    import tensorflow as tf
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError, ValueError):  # started already; split
            tf.config.experimental.set_memory_growth(gpu, True)


def use_device(device):
    """Run this process's TensorFlow on device, one of config.EVAL_DEVICES (the
    evaluator's --device): 'cpu' hides the GPUs from TensorFlow, which then takes no
    GPU memory; 'gpu' requires a GPU; 'auto', a GPU where there is one. Call it before
    TensorFlow's runtime starts. Raises Cifar10Error for 'gpu' without a GPU, and for
    'cpu' once the runtime has started on a machine with a GPU."""
    import tensorflow as tf
    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        where = "" if visible is None else f" with CUDA_VISIBLE_DEVICES={visible!r}"
        raise Cifar10Error(f"--device=gpu, but TensorFlow finds no GPU on this machine{where}. Pass --device=cpu, "
                           "or --device=auto to use a GPU where there is one.")
    if device == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as e:
            raise Cifar10Error("--device=cpu: TensorFlow has started in this process already, and its GPUs can "
                               "no longer be hidden. Evaluate before any other TensorFlow work, or set "
                               "CUDA_VISIBLE_DEVICES= (empty) in the environment to hide them.") from e


def device_line(doing, compute_dtype, strategy=None):
    """'<doing> on <devices>, <precision>', e.g. 'training on 2 GPUs (NVIDIA H200 x2),
    float16 compute with loss scaling'. compute_dtype: the forward pass's tf.DType;
    strategy: the tf.distribute strategy the run uses (default: TensorFlow's default
    strategy, which computes on the first GPU, else on the CPU)."""
    import tensorflow as tf
    devices, workers = ["GPU:0" if tf.config.get_visible_devices("GPU") else "CPU:0"], 1
    if strategy is not None:
        with contextlib.suppress(RuntimeError):  # the default strategy, which has no device list
            devices = list(strategy.extended.worker_devices)
            workers = strategy.num_replicas_in_sync // len(devices)
    where = describe_devices(devices) + (f" on each of {workers} workers" if workers > 1 else "")
    return f"{doing} on {where}, {PRECISIONS.get(compute_dtype.name, compute_dtype.name + ' compute')}"


def describe_devices(device_names):
    """A phrase for the logical devices named (e.g. '/job:localhost/replica:0/task:0/
    device:GPU:1', 'CPU:0'): '1 CPU', '2 logical devices of 1 CPU', '1 GPU (NVIDIA
    H200)', '2 GPUs (NVIDIA H200 x2)'."""
    import tensorflow as tf
    used = collections.defaultdict(list)  # kind -> logical device indices
    for name in device_names:
        spec = tf.DeviceSpec.from_string(name if "/" in name else "/device:" + name)
        used[spec.device_type.upper()].append(spec.device_index or 0)
    phrases = []
    for kind, indices in used.items():
        backing = _physical_devices_of_logical(kind)
        physical = dict(backing[i] if i < len(backing) else (i, None) for i in indices)  # index -> model name
        phrase = f"{len(physical)} {kind}{'s' if len(physical) > 1 else ''}"
        if len(indices) > len(physical):
            phrase = f"{len(indices)} logical devices of {phrase}"
        models = collections.Counter(model for model in physical.values() if model)
        if models:
            phrase += " (" + ", ".join(model if n == 1 else f"{model} x{n}" for model, n in models.items()) + ")"
        phrases.append(phrase)
    return " and ".join(phrases)


def _physical_devices_of_logical(kind):
    """For each logical device of kind ('CPU' or 'GPU'), in TensorFlow's order: (the
    index of the visible physical device it is on, that device's model name or None)."""
    import tensorflow as tf
    backing = []
    for index, device in enumerate(tf.config.get_visible_devices(kind)):
        name = tf.config.experimental.get_device_details(device).get("device_name") if kind == "GPU" else None
        backing += [(index, name)] * len(tf.config.get_logical_device_configuration(device) or [None])
    return backing


def without_noise(text):
    """text, what TensorFlow wrote to stderr as it started, without its lines that report
    nothing wrong: those NOISE matches, and the failure to start CUDA where the CUDA
    stub found no driver."""
    no_driver = NO_DRIVER in text
    return "".join(line for line in text.splitlines(keepends=True)
                   if not NOISE.search(line) and not (no_driver and CUDA_START_FAILED in line))


@contextlib.contextmanager
def _noise_hidden():
    """Within it, whatever is written to file descriptor 2 (stderr, where TensorFlow's C++
    code writes) is held in a file; at its end, what is not noise is written out."""
    sys.stderr.flush()
    try:
        stderr = os.dup(2)
    except OSError:  # no stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(stderr, 2)
            os.close(stderr)
            held.seek(0)
            kept = without_noise(held.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
