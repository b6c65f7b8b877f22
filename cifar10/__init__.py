"""The TensorFlow CIFAR-10 tutorial network, reader, trainers and evaluator, for TF2.

This is the package, the folder cifar10/: `import cifar10` finds it before the script
cifar10.py beside it (a package wins over a module of the same name), which only prints
the network and is never imported.

The modules: cifar10.shapes (image and label shapes, class names), cifar10.data
(download, checks, reading), cifar10.model (the network), cifar10.checkpoints,
cifar10.trainer, cifar10.evaluator, cifar10.distribute (where training runs),
cifar10.startup (a quiet start, GPU memory, the device line), cifar10.export and
cifar10.predict (SavedModel and labelling images), cifar10.config (the configuration
the entry points fill from flags), cifar10.errors.

The original tutorial's cifar10.inference, loss, train, inputs and distorted_inputs
are not offered under those names, since their signatures and meanings could not be
kept; the README's "Coming from the original tutorial" says what to use instead
(cifar10_input.inputs and distorted_inputs keep the original reader's signatures).
"""
import importlib

# The package's names, from their modules, imported on first use: the programs import
# cifar10.startup and cifar10.cli before TensorFlow, to quiet its start-up, and importing
# them imports this package first.
_MODULE_OF = {"Cifar10Error": "cifar10.errors", "EvalConfig": "cifar10.config", "TrainConfig": "cifar10.config",
              "Cifar10Model": "cifar10.model", "evaluate": "cifar10.evaluator"}

__all__ = ["Cifar10Error", "EvalConfig", "TrainConfig", "Cifar10Model", "evaluate"]


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'cifar10' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name]), name)
