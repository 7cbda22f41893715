"""CSVLogger: the file parses back to exactly the logged values."""

import csv

import pytest
from callback_helpers import linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.csv_logger import CSVLogger


def read(path, delimiter=","):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def fit(model, callbacks, epochs=2, **kwargs):
    x, y = linear_data()
    return model.fit(x, y, epochs=epochs, verbose=0, callbacks=callbacks, **kwargs)


def compiled():
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return model


@pytest.mark.parametrize("separator", [",", ";"])
def test_rows_equal_the_history(tmp_path, separator):
    path = tmp_path / "log.csv"
    model = compiled()
    h = fit(
        model, [CSVLogger(path, separator=separator)], epochs=3, validation_split=0.25
    )
    rows = read(path, separator)
    assert list(rows[0]) == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key, values in h.history.items():
        assert [float(r[key]) for r in rows] == values  # exact round trip


def test_validation_columns_exist_before_validation_runs(tmp_path):
    path = tmp_path / "log.csv"
    model = compiled()
    h = fit(
        model, [CSVLogger(path)], epochs=2, validation_split=0.25, validation_freq=2
    )
    rows = read(path)
    assert rows[0]["val_loss"] == "NA" and rows[0]["val_mae"] == "NA"
    assert float(rows[1]["val_loss"]) == h.history["val_loss"][0]


def test_append_continues_the_file_and_overwrite_starts_afresh(tmp_path):
    path = tmp_path / "log.csv"
    model = compiled()
    first = fit(model, [CSVLogger(path)]).history["loss"]
    second = fit(model, [CSVLogger(path, append=True)]).history["loss"]
    rows = read(path)
    assert [float(r["loss"]) for r in rows] == first + second
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]  # fit continues the count
    with open(path) as f:
        assert sum(line.startswith("epoch") for line in f) == 1
    third = fit(model, [CSVLogger(path)]).history["loss"]
    assert [float(r["loss"]) for r in read(path)] == third


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="separator"):
        CSVLogger(tmp_path / "a.csv", separator=", ")
    with pytest.raises(TypeError, match="append"):
        CSVLogger(tmp_path / "a.csv", append="yes")
