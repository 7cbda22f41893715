"""A functional model with two inputs and two outputs.

Each example has a numeric vector (`features`, 8 floats) and a sequence of 12 token
ids (`tokens`, int32, vocabulary 48). The tokens pass through an `Embedding` and a
global average pool, the features through a `Dense` layer; the two are concatenated
and feed two heads:

- `score`: a regression target that depends on both inputs (mean squared error);
- `kind`: which third of the vocabulary most tokens come from (3 classes,
  cross-entropy on logits).

Losses, loss weights and metrics are given per output by name, and the logs are
named as Keras names them (`score_loss`, `kind_accuracy`, ...).

    python examples/two_inputs.py
    python examples/two_inputs.py --smoke
"""

from __future__ import annotations

import argparse

import numpy as np

import funkeras as fk

VOCAB = 48
SEQ_LEN = 12
FEATURES = 8


def make_data(n: int, seed: int = 0) -> tuple[dict, dict]:
    """Inputs `{"features", "tokens"}` and targets `{"score", "kind"}` for n rows."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, FEATURES)).astype(np.float32)
    # Each row draws 2/3 of its tokens from one third of the vocabulary (its kind).
    kind = rng.integers(0, 3, size=n)
    third = VOCAB // 3
    own = kind[:, None] * third + rng.integers(0, third, size=(n, SEQ_LEN))
    anywhere = rng.integers(0, VOCAB, size=(n, SEQ_LEN))
    tokens = np.where(rng.random((n, SEQ_LEN)) < 2 / 3, own, anywhere).astype(np.int32)
    counts = np.stack([(tokens // third == k).sum(1) for k in range(3)], axis=1)
    kind = counts.argmax(1).astype(np.int32)  # the label the tokens really show
    w = rng.normal(size=(FEATURES,)) / np.sqrt(FEATURES)
    score = features @ w + counts[:, 0] / SEQ_LEN - counts[:, 2] / SEQ_LEN
    return (
        {"features": features, "tokens": tokens},
        {"score": score[:, None].astype(np.float32), "kind": kind},
    )


def build_model(seed: int = 0) -> fk.Model:
    """Two inputs (`features`, `tokens`), two named outputs (`score`, `kind`)."""
    layers = fk.layers
    features = fk.Input(shape=(FEATURES,), name="features")
    tokens = fk.Input(shape=(SEQ_LEN,), dtype="int32", name="tokens")
    h_tokens = layers.GlobalAveragePooling1D()(layers.Embedding(VOCAB, 16)(tokens))
    h_features = layers.Dense(16, activation="relu")(features)
    h = layers.Concatenate()([h_features, h_tokens])
    h = layers.Dense(32, activation="relu")(h)
    score = layers.Dense(1, name="score")(h)
    kind = layers.Dense(3, name="kind")(h)
    return fk.Model([features, tokens], [score, kind], seed=seed)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on generated data; return the test logs (`score_mae`, ...)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.samples or (1024 if args.smoke else 4096)
    epochs = args.epochs or (4 if args.smoke else 20)

    x, y = make_data(n)
    split = int(0.8 * n)
    x_train = {k: v[:split] for k, v in x.items()}
    y_train = {k: v[:split] for k, v in y.items()}
    x_test = {k: v[split:] for k, v in x.items()}
    y_test = {k: v[split:] for k, v in y.items()}

    model = build_model()
    model.compile(
        optimizer=fk.optimizers.Adam(learning_rate=3e-3),
        loss={
            "score": "mse",
            "kind": fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"score": 1.0, "kind": 0.5},
        metrics={"score": ["mae"], "kind": ["accuracy"]},
    )
    if not args.smoke:
        model.summary()
    model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=epochs,
        validation_split=0.1,
        verbose=0 if args.smoke else 2,
    )
    logs = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
    score_pred, kind_logits = model.predict(x_test, verbose=0)
    baseline_mae = float(np.abs(y_test["score"] - y_train["score"].mean()).mean())

    print("test:", ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    print(
        f"score MAE {logs['score_mae']:.3f} (predicting the mean: {baseline_mae:.3f}); "
        f"kind accuracy {logs['kind_accuracy']:.3f} (chance: 0.333); "
        f"predict shapes {score_pred.shape} and {kind_logits.shape}"
    )
    return {k: float(v) for k, v in logs.items()} | {"baseline_mae": baseline_mae}


if __name__ == "__main__":
    main()
