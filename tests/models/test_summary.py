"""`model.summary()`: Keras 3's table, checked line by line.

The expected tables are written out in full: column widths, the right-aligned
parameter counts with thousands separators, names wrapped (not cut) when they do
not fit, Keras' `layer[node][tensor]` connections, and the totals with bytes
(per dtype) split into trainable and non-trainable weights.
"""

from __future__ import annotations

import pytest

import funkeras as fk
from funkeras.inspect.summary import readable_memory_size, summary_text
from funkeras.layers.core import Dense
from funkeras.layers.merging import Add, Concatenate
from funkeras.layers.normalization import BatchNormalization
from funkeras.layers.regularization import Dropout


def _lines(model, **kwargs):
    captured = []
    model.summary(print_fn=captured.append, **kwargs)
    assert len(captured) == 1  # one call with the whole text, as Keras' print_fn
    return captured[0].splitlines()


def _sequential():
    return fk.Sequential(
        [
            fk.Input(shape=(32,)),
            Dense(64, activation="relu"),
            BatchNormalization(),
            Dropout(0.5),
            Dense(1, trainable=False, dtype="bfloat16"),
        ]
    )


SEQUENTIAL = [
    'Model: "sequential"',
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
    "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
    "│ dense (Dense)                   │ (None, 64)             │         2,112 │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ batch_normalization             │ (None, 64)             │           256 │",
    "│ (BatchNormalization)            │                        │               │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ dropout (Dropout)               │ (None, 64)             │             0 │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ dense_1 (Dense)                 │ (None, 1)              │            65 │",
    "└─────────────────────────────────┴────────────────────────┴───────────────┘",
    # 2,368 float32 weights (9,472 B) + 65 bfloat16 ones (130 B) = 9,602 B.
    " Total params: 2,433 (9.38 KB)",
    # Dense 2,112 + BN gamma and beta 128, all float32: 8,960 B.
    " Trainable params: 2,240 (8.75 KB)",
    # BN moving mean and variance 128 (512 B) + the frozen bfloat16 Dense (130 B).
    " Non-trainable params: 193 (642.00 B)",
]


def test_sequential_summary_line_by_line():
    assert _lines(_sequential()) == SEQUENTIAL


def test_summary_prints_by_default(capsys):
    _sequential().summary()
    assert capsys.readouterr().out.splitlines() == SEQUENTIAL


def _branching():
    x = fk.Input(shape=(3,), name="x")
    side = fk.Input(shape=(2,), name="side")
    shared = Dense(3, name="shared")
    h1 = shared(x)
    h2 = shared(h1)  # the second call of `shared`: node 1
    s = Dense(3, use_bias=False, trainable=False, name="side_proj")(side)
    merged = BatchNormalization(name="bn")(Add(name="add")([h2, s]))
    out = Dense(1, name="out")(Concatenate(name="cat")([merged, h1]))
    return fk.Model([x, side], out, name="branchy")


BRANCHING = [
    'Model: "branchy"',
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",  # noqa: E501
    "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃ Connected to                 ┃",  # noqa: E501
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",  # noqa: E501
    "│ x (InputLayer)                  │ (None, 3)              │             0 │ -                            │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ side (InputLayer)               │ (None, 2)              │             0 │ -                            │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ shared (Dense)                  │ multiple               │            12 │ x[0][0], shared[0][0]        │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ side_proj (Dense)               │ (None, 3)              │             6 │ side[0][0]                   │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ add (Add)                       │ (None, 3)              │             0 │ shared[1][0],                │",  # noqa: E501
    "│                                 │                        │               │ side_proj[0][0]              │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ bn (BatchNormalization)         │ (None, 3)              │            12 │ add[0][0]                    │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ cat (Concatenate)               │ (None, 6)              │             0 │ bn[0][0], shared[0][0]       │",  # noqa: E501
    "├─────────────────────────────────┼────────────────────────┼───────────────┼──────────────────────────────┤",  # noqa: E501
    "│ out (Dense)                     │ (None, 1)              │             7 │ cat[0][0]                    │",  # noqa: E501
    "└─────────────────────────────────┴────────────────────────┴───────────────┴──────────────────────────────┘",  # noqa: E501
    # shared 9 + 3, side_proj 6, bn 4 * 3, out 6 + 1: 37 float32 weights.
    " Total params: 37 (148.00 B)",
    " Trainable params: 25 (100.00 B)",
    # The frozen side_proj kernel and bn's moving statistics.
    " Non-trainable params: 12 (48.00 B)",
]


def test_branching_functional_summary_line_by_line():
    assert _lines(_branching()) == BRANCHING


def _nested():
    encoder = fk.Sequential(
        [fk.Input(shape=(4,)), Dense(3), BatchNormalization()], name="encoder"
    )
    return fk.Sequential(
        [fk.Input(shape=(4,)), encoder, Dense(2, name="head")]
    ), encoder


NESTED_TABLE = [
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓",
    "┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩",
    "│ encoder (Sequential)            │ (None, 3)              │            27 │",
    "├─────────────────────────────────┼────────────────────────┼───────────────┤",
    "│ head (Dense)                    │ (None, 2)              │             8 │",
    "└─────────────────────────────────┴────────────────────────┴───────────────┘",
]


def test_nested_model_is_one_row_and_freezing_it_moves_its_weights():
    outer, encoder = _nested()
    assert _lines(outer) == [
        'Model: "sequential"',
        *NESTED_TABLE,
        " Total params: 35 (140.00 B)",
        " Trainable params: 29 (116.00 B)",  # all but the moving statistics
        " Non-trainable params: 6 (24.00 B)",
    ]
    encoder.trainable = False
    assert _lines(outer)[-3:] == [
        " Total params: 35 (140.00 B)",
        " Trainable params: 8 (32.00 B)",
        " Non-trainable params: 27 (108.00 B)",
    ]


def test_line_length_widens_the_first_column():
    lines = summary_text(_nested()[0], line_length=80).splitlines()
    assert lines[1] == "┏" + "━" * 37 + "┳" + "━" * 24 + "┳" + "━" * 15 + "┓"
    assert lines[
        4
    ] == "│ encoder (Sequential)" + " " * 16 + "│ (None, 3)" + " " * 14 + (
        "│            27 │"
    )
    assert all(len(line) == 80 for line in lines[1:8])


def test_unbuilt_model_says_how_to_build():
    model = fk.Sequential([Dense(2)], name="later")
    assert _lines(model) == [
        'Model: "later"',
        "This model has not been built yet. Build it with `model.build(input_shape)`, "
        "an `fk.Input`, or by calling it on data.",
    ]


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0.00 B"),
        (1023, "1023.00 B"),
        (1024, "1.00 KB"),
        (2816, "2.75 KB"),
        (1.5 * 1024**2, "1.50 MB"),
        (3 * 1024**3, "3.00 GB"),
    ],
)
def test_readable_memory_size_matches_keras(size, text):
    assert readable_memory_size(size) == text
