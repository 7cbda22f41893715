"""Shared pieces of the callback tests: tiny data and models, snapshots, event files."""

import glob
import os
import struct

import jax
import numpy as np

import funkeras as fk

L = fk.layers


def linear_data(n=32, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)[:d] + 0.3).astype(np.float32)
    return x, y


def linear_model(seed=0, units=1, d=3):
    return fk.Sequential([fk.Input(shape=(d,)), L.Dense(units)], seed=seed)


def copy_params(model):
    return jax.tree.map(lambda a: np.array(a, copy=True), model.params)


class Snapshots(fk.callbacks.Callback):
    """Copies of the weights at every epoch end and around every batch block."""

    def __init__(self, batches=False):
        super().__init__()
        self.epochs = []
        self.before = []
        self.after = []
        if batches:
            self.on_train_batch_begin = self._begin
            self.on_train_batch_end = self._end

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append([np.array(w, copy=True) for w in self.model.get_weights()])

    def _begin(self, batch, logs=None):
        self.before.append(copy_params(self.model))

    def _end(self, batch, logs=None):
        self.after.append(copy_params(self.model))


def gd_reference(x, y, kernel, bias, learning_rates):
    """Full-batch gradient descent on the mean squared error, one step per rate."""
    kernel, bias = kernel.astype(np.float64), bias.astype(np.float64)
    for lr in learning_rates:
        err = x @ kernel + bias - y
        kernel = kernel - lr * 2 * x.T @ err / err.size
        bias = bias - lr * 2 * err.sum(0) / err.size
    return kernel, bias


def _masked_crc(data):
    from tensorboardX.crc32c import crc32c

    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_events(folder):
    """Every event of the TFRecord event files in `folder`, CRCs checked."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            header = data[pos : pos + 8]
            (length,) = struct.unpack("<Q", header)
            (length_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            assert length_crc == _masked_crc(header)
            record = data[pos + 12 : pos + 12 + length]
            (record_crc,) = struct.unpack(
                "<I", data[pos + 12 + length : pos + 16 + length]
            )
            assert record_crc == _masked_crc(record)
            events.append(event_pb2.Event.FromString(record))
            pos += 16 + length
    return events


def scalars(folder):
    """`{tag: {step: value}}` of the scalar summaries in `folder`."""
    out = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def histograms(folder):
    """`{tag: {step: HistogramProto}}` of the histogram summaries in `folder`."""
    out = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("histo"):
                out.setdefault(value.tag, {})[event.step] = value.histo
    return out
