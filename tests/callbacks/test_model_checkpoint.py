"""ModelCheckpoint: file names from the template, files that load back, early errors."""

import os

import numpy as np
import pytest
from callback_helpers import Snapshots, linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.model_checkpoint import ModelCheckpoint
from funkeras.saving.format import load_model, load_weights


def compiled(steps_per_execution=1):
    model = linear_model()
    model.compile(
        optimizer=fk.optimizers.SGD(0.05),
        loss="mse",
        metrics=["mae"],
        steps_per_execution=steps_per_execution,
    )
    return model


def test_epoch_files_follow_the_template_and_load_back(tmp_path):
    x, y = linear_data()
    model = compiled()
    snaps = Snapshots()
    template = str(tmp_path / "ckpt" / "m-{epoch:02d}-{loss:.4f}-{val_mae:.3f}.fkz")
    h = model.fit(
        x,
        y,
        epochs=3,
        validation_split=0.25,
        verbose=0,
        callbacks=[snaps, ModelCheckpoint(template)],
    )
    names = [
        f"m-{e + 1:02d}-{h.history['loss'][e]:.4f}-{h.history['val_mae'][e]:.3f}.fkz"
        for e in range(3)
    ]
    assert sorted(os.listdir(tmp_path / "ckpt")) == names
    for epoch, name in enumerate(names):
        loaded = load_model(tmp_path / "ckpt" / name, compile=False)
        for got, want in zip(loaded.get_weights(), snaps.epochs[epoch], strict=True):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_best_only_weights_keep_the_best_epoch(tmp_path):
    x, y = linear_data()
    model = compiled()
    snaps = Snapshots()
    path = tmp_path / "best.weights.safetensors"
    # Training lowers the loss, so in "max" mode epoch 0 stays the best: the file
    # is written once and never overwritten.
    save = ModelCheckpoint(
        path, monitor="loss", mode="max", save_best_only=True, save_weights_only=True
    )
    model.fit(x, y, epochs=3, verbose=0, callbacks=[snaps, save])
    fresh = linear_model(seed=1)
    load_weights(fresh, path)
    for got, want in zip(fresh.get_weights(), snaps.epochs[0], strict=True):
        np.testing.assert_array_equal(got, want)
    assert save.best == pytest.approx(float(model.history.history["loss"][0]))


def test_initial_value_threshold_blocks_worse_models(tmp_path):
    x, y = linear_data()
    model = compiled()
    save = ModelCheckpoint(
        tmp_path / "m.fkz",
        monitor="loss",
        save_best_only=True,
        initial_value_threshold=0.0,
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[save])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_batch_frequency_names_epoch_and_batch(tmp_path, steps_per_execution):
    x, y = linear_data()  # 32 rows, batches of 8: 4 batches per epoch
    model = compiled(steps_per_execution)
    save = ModelCheckpoint(
        tmp_path / "m-{epoch}-{batch}.weights.safetensors",
        save_weights_only=True,
        save_freq=2,
    )
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[save])
    assert sorted(os.listdir(tmp_path)) == [
        f"m-{e}-{b}.weights.safetensors" for e in (1, 2) for b in (2, 4)
    ]


@pytest.mark.parametrize(
    "template, kwargs, match",
    [
        ("m-{epoc}.fkz", {}, r"unknown field\(s\) \['epoc'\]"),
        ("m-{val_acc}.fkz", {}, r"'val_acc'.*'val_loss', 'val_mae'"),
        ("m-{batch}.fkz", {}, r"save_freq"),
        ("m-{loss:d}.fkz", {}, "cannot be formatted"),
        ("m-{epoch:.2x}.fkz", {}, "cannot be formatted"),
    ],
)
def test_bad_template_fails_before_the_first_step(tmp_path, template, kwargs, match):
    x, y = linear_data()
    model = compiled()
    before = model.get_weights()
    save = ModelCheckpoint(str(tmp_path / template), **kwargs)
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[save])
    assert model.compile_stats().get("train_step", {}).get("calls", 0) == 0
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "filepath, kwargs, match",
    [
        ("m.keras", {}, r"must end in `\.fkz`"),
        ("m.fkz", {"save_weights_only": True}, r"\.weights\.safetensors"),
        ("m-{}.fkz", {}, "positional field"),
        ("m-{0}.fkz", {}, "positional field"),
        ("m.fkz", {"save_freq": "batch"}, "save_freq"),
        ("m.fkz", {"mode": "largest"}, "mode"),
    ],
)
def test_bad_arguments_fail_at_construction(filepath, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(filepath, **kwargs)
