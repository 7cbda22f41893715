"""A masked LSTM classifier on variable-length token sequences.

Each example is a sentence of 4 to 30 tokens from a vocabulary of 20 (0 is
padding). Tokens 1-9 are "negative" words, 10-19 "positive" ones; the label
says whether positive words are the majority. The sentences are padded at the
end to 30 tokens with `fk.utils.pad_sequences(padding="post")`, and the
padding is masked: the LSTM skips masked steps (it keeps its state there), so
a short sentence is read exactly as if it were alone.

The mask is passed to the LSTM explicitly (`LSTM(...)(h, mask=mask)`, a
`(batch, time)` boolean input computed from the tokens), which works today.
Once `Embedding(mask_zero=True)` is available the mask input can go: the
embedding then makes the same mask and the graph carries it to the LSTM.

    python examples/sequence_classifier.py
    python examples/sequence_classifier.py --smoke
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import funkeras as fk

VOCAB = 20
MAXLEN = 30


def make_data(n: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Inputs `{"tokens", "mask"}` (padded at the end) and labels for n sentences."""
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for _ in range(n):
        length = int(rng.integers(4, MAXLEN + 1))
        p_positive = rng.choice([0.3, 0.7])
        positive = rng.random(length) < p_positive
        words = np.where(
            positive, rng.integers(10, VOCAB, length), rng.integers(1, 10, length)
        )
        sentences.append(words.tolist())
        labels.append(int(positive.sum() * 2 > length))
    tokens = fk.utils.pad_sequences(sentences, maxlen=MAXLEN, padding="post")
    return {"tokens": tokens, "mask": tokens != 0}, np.asarray(labels, np.int32)


def build_model(seed: int = 0) -> fk.Model:
    """Embedding -> masked LSTM -> Dense(2) logits."""
    layers = fk.layers
    tokens = fk.Input(shape=(MAXLEN,), dtype="int32", name="tokens")
    mask = fk.Input(shape=(MAXLEN,), dtype="bool", name="mask")
    h = layers.Embedding(VOCAB, 16)(tokens)
    h = layers.LSTM(32)(h, mask=mask)
    return fk.Model([tokens, mask], layers.Dense(2)(h), seed=seed)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on generated sentences; return the test accuracy and more."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.samples or (1536 if args.smoke else 6000)
    epochs = args.epochs or (6 if args.smoke else 15)

    x, y = make_data(n)
    split = int(0.8 * n)
    x_train = {k: v[:split] for k, v in x.items()}
    x_test = {k: v[split:] for k, v in x.items()}

    model = build_model()
    model.compile(
        optimizer=fk.optimizers.Adam(learning_rate=1e-2),
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if not args.smoke:
        model.summary()
    start = time.perf_counter()
    model.fit(
        x_train, y[:split], batch_size=64, epochs=epochs, verbose=0 if args.smoke else 2
    )
    seconds = time.perf_counter() - start
    logs = model.evaluate(x_test, y[split:], return_dict=True, verbose=0)

    # Masking at work: a sentence gives the same logits alone (no padding at
    # all) as inside a padded batch.
    first = int(x_test["mask"][0].sum())
    alone_tokens = fk.Input(shape=(first,), dtype="int32")
    alone_mask = fk.Input(shape=(first,), dtype="bool")
    short = fk.Model(
        [alone_tokens, alone_mask], _same_layers(model)(alone_tokens, alone_mask)
    )
    short.set_weights(model.get_weights())  # the weights do not depend on the length
    padded = model.predict({k: v[:1] for k, v in x_test.items()}, verbose=0)
    unpadded = short.predict(
        [x_test["tokens"][:1, :first], x_test["mask"][:1, :first]], verbose=0
    )
    gap = float(np.abs(padded - unpadded).max())

    print(
        f"test accuracy {logs['accuracy']:.3f} (chance 0.5) after {epochs} epochs "
        f"in {seconds:.1f}s; padded vs unpadded logits differ by {gap:.1e}"
    )
    return {
        "test_accuracy": float(logs["accuracy"]),
        "test_loss": float(logs["loss"]),
        "padding_gap": gap,
    }


def _same_layers(model: fk.Model):
    """The trained model's layers, called again on inputs of another length."""
    embedding, lstm, dense = (
        layer
        for layer in model.layers
        if isinstance(layer, fk.layers.Embedding | fk.layers.LSTM | fk.layers.Dense)
    )

    def call(tokens, mask):
        return dense(lstm(embedding(tokens), mask=mask))

    return call


if __name__ == "__main__":
    main()
