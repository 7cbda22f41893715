"""A masked LSTM classifier on variable-length token sequences.

Each example is a sentence of 4 to 30 tokens from a vocabulary of 20 (0 is
padding). Tokens 1-9 are "negative" words, 10-19 "positive" ones; the label
says whether positive words are the majority. The sentences are padded at the
end to 30 tokens with `fk.utils.pad_sequences(padding="post")`, and the
padding is masked: the LSTM skips masked steps (it keeps its state there), so
a short sentence is read exactly as if it were alone.

The mask comes from `Embedding(mask_zero=True)` (token 0 is padding) and the
graph carries it to the LSTM. The input has a free time axis
(`fk.Input(shape=(None,))`), so the same model also reads one unpadded
sentence (one more compile for that length).

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


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (padded at the end with 0) and labels for n sentences."""
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
    return tokens, np.asarray(labels, np.int32)


def build_model(seed: int = 0) -> fk.Model:
    """Embedding(mask_zero=True) -> LSTM (masked) -> Dense(2) logits."""
    layers = fk.layers
    tokens = fk.Input(shape=(None,), dtype="int32", name="tokens")
    h = layers.Embedding(VOCAB, 16, mask_zero=True)(tokens)
    h = layers.LSTM(32)(h)
    return fk.Model(tokens, layers.Dense(2)(h), seed=seed)


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
    x_train, x_test = x[:split], x[split:]

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
    first = int((x_test[0] != 0).sum())
    padded = model.predict(x_test[:1], verbose=0)
    unpadded = model.predict(x_test[:1, :first], verbose=0)
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


if __name__ == "__main__":
    main()
