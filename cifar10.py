"""Print the CIFAR-10 network: each variable's name and shape, and the parameter count.

    python cifar10.py

A command only, not the library: this file is not what `import cifar10` imports. That
is the package, the folder cifar10/ beside this file (a package wins over a module of
the same name), whose cifar10.model holds the network. The original tutorial's
cifar10.py was the model module; the README's "Coming from the original tutorial" says
where each of its functions went.
"""
import sys

import numpy as np


def main(argv=None):
    from cifar10.model import Cifar10Model  # the package cifar10/, not this file (imports TensorFlow)
    model = Cifar10Model()
    total = 0
    for variable in model.trainable_variables:
        count = int(np.prod(variable.shape))
        total += count
        print(f"{variable.name.split(':')[0]:28s} {str(tuple(variable.shape)):18s} {count:>9,}")
    print(f"{'total':47s} {total:>9,}")
    return 0


if __name__ == "__main__":
    from cifar10 import startup
    startup.begin()  # before TensorFlow is imported: quiet unless --verbose; GPU memory grows as needed
    sys.exit(main(sys.argv[1:]))
