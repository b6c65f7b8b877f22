"""Print the CIFAR-10 network: each variable's name and shape, and the parameter count.

    python cifar10.py

The tutorial's model module itself is the package cifar10/ beside this file: from
this folder, `import cifar10` imports the package (a package wins over a module of the
same name), which offers the original functions: cifar10.inference, cifar10.loss,
cifar10.train, cifar10.inputs, cifar10.distorted_inputs,
cifar10.maybe_download_and_extract.
"""
import os
import sys

import numpy as np


def main(argv=None):
    from cifar10.model import Cifar10Model  # the package, not this file
    model = Cifar10Model()
    total = 0
    for variable in model.trainable_variables:
        count = int(np.prod(variable.shape))
        total += count
        print(f"{variable.name.split(':')[0]:28s} {str(tuple(variable.shape)):18s} {count:>9,}")
    print(f"{'total':47s} {total:>9,}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1:]))
