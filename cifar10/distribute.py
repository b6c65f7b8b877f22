"""Where training runs: the tf.distribute strategy for this process.

- TF_CONFIG naming a cluster of two or more tasks: MultiWorkerMirroredStrategy, one
  job across machines (each worker uses its GPUs, or its CPU).
- num_gpus towers (cifar10_multi_gpu_train.py): MirroredStrategy over that many GPUs;
  on a machine with no GPU, over that many logical CPU devices.
- Otherwise TensorFlow's default strategy: one device.
"""
import json
import os

import tensorflow as tf

from cifar10.errors import Cifar10Error

TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def cluster_from_tf_config():
    """The TF_CONFIG cluster as {job: [addresses]} when it names two or more tasks,
    else None. Raises Cifar10Error when TF_CONFIG is set but malformed."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    fix = f"Set it per process like {TF_CONFIG_EXAMPLE}, or unset it to train on one machine."
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise Cifar10Error(f"The environment variable TF_CONFIG is not valid JSON ({e}). {fix}") from e
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(
            isinstance(addresses, list) and addresses and all(isinstance(a, str) and ":" in a for a in addresses)
            for addresses in cluster.values()):
        raise Cifar10Error(f"TF_CONFIG's 'cluster' must map job names to lists of 'host:port' addresses; "
                           f"it is {cluster!r}. {fix}")
    if not set(cluster) <= {"chief", "worker"} or "worker" not in cluster:
        raise Cifar10Error(f"TF_CONFIG's cluster has jobs {sorted(cluster)}; these trainers take 'worker' "
                           f"(and optionally one 'chief'). {fix}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise Cifar10Error(f"TF_CONFIG's 'task' must name this process's job and index in the cluster, like "
                           f'{{"type": "worker", "index": 0}}; it is {task!r}. {fix}')
    if sum(len(addresses) for addresses in cluster.values()) < 2:
        return None
    return cluster


def make_strategy(num_gpus=None):
    """The strategy for this process (see the module docstring). Call it before any other
    TensorFlow work: logical devices and collectives are set up when the runtime starts.
    Raises Cifar10Error for a malformed TF_CONFIG or too few GPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    # A GPU split into logical GPUs (tf.config.set_logical_device_configuration, as
    # benchmarks/logical_gpus.py does) holds that many towers; counted without starting
    # the runtime, which must not start before the strategy does.
    gpu_slots = sum(len(tf.config.get_logical_device_configuration(gpu) or [gpu]) for gpu in gpus)
    if num_gpus is not None and gpus and gpu_slots < num_gpus:
        raise Cifar10Error(f"--num_gpus={num_gpus}, but this machine has {gpu_slots} GPU(s) "
                           f"({', '.join(g.name for g in gpus)}). Pass --num_gpus={gpu_slots} or fewer.")
    cluster = cluster_from_tf_config()
    if cluster is not None:
        if num_gpus is not None and gpus:
            tf.config.set_visible_devices(gpus[:num_gpus], "GPU")
        workers = sum(len(addresses) for addresses in cluster.values())
        print(f"TF_CONFIG: one job across {workers} workers, on each worker's "
              f"{'GPUs' if gpus else 'CPU'}", flush=True)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if num_gpus is None:
        return tf.distribute.get_strategy()
    if gpus:
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(num_gpus)])
    _split_cpu(num_gpus)
    print(f"No GPU found: running {num_gpus} towers on {num_gpus} logical CPU devices.", flush=True)
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(num_gpus)])


def _split_cpu(count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu) or []
    if len(existing) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
        raise Cifar10Error(f"Cannot split the CPU into {count} logical devices after TensorFlow has "
                           "started; create the strategy first.") from e


def is_chief(strategy):
    """True for the one process that writes checkpoints and summaries to --train_dir:
    the only process, or the chief (else worker 0) of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs
