"""The TensorFlow CIFAR-10 tutorial network, reader, trainers and evaluator, for TF2.

This is the package, the folder cifar10/: `import cifar10` finds it before the script
cifar10.py beside it (a package wins over a module of the same name), which only prints
the network and is never imported.

The modules: cifar10.shapes (image and label shapes, class names), cifar10.data
(download, checks, reading), cifar10.model (the network), cifar10.checkpoints,
cifar10.trainer, cifar10.evaluator, cifar10.distribute (where training runs),
cifar10.export and cifar10.predict (SavedModel and labelling images), cifar10.config
(the configuration the entry points fill from flags), cifar10.errors.

The original tutorial's cifar10.inference, loss, train, inputs and distorted_inputs
are not offered under those names, since their signatures and meanings could not be
kept; the README's "Coming from the original tutorial" says what to use instead
(cifar10_input.inputs and distorted_inputs keep the original reader's signatures).
"""
from cifar10.config import EvalConfig, TrainConfig
from cifar10.errors import Cifar10Error
from cifar10.evaluator import evaluate
from cifar10.model import Cifar10Model

__all__ = ["Cifar10Error", "EvalConfig", "TrainConfig", "Cifar10Model", "evaluate"]
