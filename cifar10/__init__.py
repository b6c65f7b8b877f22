"""The TensorFlow CIFAR-10 tutorial network, reader, trainers and evaluator, for TF2.

`import cifar10` gives the original tutorial's public functions (inference, loss,
train, inputs, distorted_inputs, maybe_download_and_extract); the modules hold the
rest: cifar10.data (reading), cifar10.model (network), cifar10.trainer, cifar10.evaluator,
cifar10.distribute (where training runs), cifar10.export and cifar10.predict (SavedModel
and labelling images), cifar10.config (the configuration the entry points fill from flags).
"""
from cifar10.config import Cifar10Error, EvalConfig, TrainConfig
from cifar10.data import distorted_inputs, inputs, maybe_download_and_extract
from cifar10.evaluator import evaluate
from cifar10.model import Cifar10Model, inference, loss
from cifar10.trainer import train

__all__ = ["Cifar10Error", "EvalConfig", "TrainConfig", "Cifar10Model", "distorted_inputs", "evaluate",
           "inference", "inputs", "loss", "maybe_download_and_extract", "train"]
