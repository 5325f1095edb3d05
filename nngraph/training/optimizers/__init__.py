"""Optimizers, one unit per file; importing the package registers every one of them.

The registry keeps load order, which is the order messages list the names: sgd, adam, adamw,
rmsprop, adagrad, lion.
"""

from nngraph.training.optimizers.base import OPTIMIZERS, Optimizer, Slot, Update, UpdateEmitter, register

# isort: split
from nngraph.training.optimizers import sgd

# isort: split
from nngraph.training.optimizers import adam

# isort: split
from nngraph.training.optimizers import rmsprop

# isort: split
from nngraph.training.optimizers import adagrad

# isort: split
from nngraph.training.optimizers import lion

__all__ = [
    "OPTIMIZERS",
    "Optimizer",
    "Slot",
    "Update",
    "UpdateEmitter",
    "adagrad",
    "adam",
    "lion",
    "register",
    "rmsprop",
    "sgd",
]
