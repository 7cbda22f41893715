"""Keras' `keras.utils` helpers: labels, padding, seeds, plots and datasets.

`to_categorical`, `normalize`, `pad_sequences`, `set_random_seed`, `plot_model`
(funkeras.inspect's Graphviz/DOT drawing), `PyDataset` (batches by index, for
`fit`/`evaluate`/`predict`), `split_dataset` over arrays, and the
`pack_x_y_sample_weight`/`unpack_x_y_sample_weight` pair. `get_file` is left out
(no downloads).

Example:
    >>> import funkeras as fk
    >>> fk.utils.to_categorical([1, 0], num_classes=3).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
"""

from funkeras.inspect import model_to_dot, plot_model
from funkeras.layers.budget import set_weight_budget, weight_budget
from funkeras.random import set_random_seed
from funkeras.utils.dataset import (
    PyDataset,
    pack_x_y_sample_weight,
    split_dataset,
    unpack_x_y_sample_weight,
)
from funkeras.utils.numerical import normalize, pad_sequences, to_categorical

__all__ = [
    "to_categorical",
    "normalize",
    "pad_sequences",
    "set_random_seed",
    "plot_model",
    "model_to_dot",
    "PyDataset",
    "split_dataset",
    "pack_x_y_sample_weight",
    "unpack_x_y_sample_weight",
    "set_weight_budget",
    "weight_budget",
]
