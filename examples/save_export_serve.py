"""Save, load, export and serve a model.

1. Train a small classifier on generated data.
2. `save_model` writes one `.fkz` file (architecture, weights, optimizer state and
   training progress; data only, no code); `load_model` brings it back ready to
   predict or to continue training.
3. `save_weights` / `load_weights` move only the weights (a safetensors file keyed
   `"layer/variable"`) into a model built by code.
4. `export_model` traces the model's inference function with `jax.export`, with a
   symbolic batch dimension, into a `.fkx` artefact; `load_exported` runs it with
   no model code at all (the `export` extra: `flatbuffers`).
5. A tiny JSON server (`http.server` on 127.0.0.1) answers `POST /predict` with
   the exported artefact. By default the script sends it a few requests and shuts
   it down; `--serve` keeps it running until Ctrl-C:

       python examples/save_export_serve.py --serve --port 8000
       curl -s localhost:8000/predict -d '{"instances": [[1, 2, 3, 4, 5, 6, 7, 8]]}'

    python examples/save_export_serve.py
    python examples/save_export_serve.py --smoke
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import tempfile
import threading
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np

import funkeras as fk
from funkeras.saving import (
    export_model,
    load_exported,
    load_model,
    load_weights,
    save_model,
    save_weights,
)

FEATURES = 8


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: which of three fixed directions a row points along most."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    y = (x @ rng.normal(size=(FEATURES, 3))).argmax(1).astype(np.int32)
    return x, y


def build_model(seed: int = 0) -> fk.Model:
    """An 8-32-3 MLP returning class probabilities."""
    return fk.Sequential(
        [
            fk.Input(shape=(FEATURES,)),
            fk.layers.Dense(32, activation="relu"),
            fk.layers.Dense(3, activation="softmax"),
        ],
        seed=seed,
    )


def make_handler(predict):
    """A request handler class answering `POST /predict` with `predict(instances)`."""

    class PredictHandler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the name http.server calls
            if self.path != "/predict":
                return self._reply(404, {"error": f"unknown path {self.path!r}"})
            try:
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                instances = np.asarray(request["instances"], np.float32)
                if instances.ndim != 2 or instances.shape[1] != FEATURES:
                    raise ValueError(
                        f"`instances` must be a list of rows of {FEATURES} numbers, "
                        f"got shape {instances.shape}"
                    )
            except (ValueError, KeyError, TypeError) as e:
                return self._reply(400, {"error": str(e)})
            probabilities = np.asarray(predict(instances))
            self._reply(
                200,
                {
                    "predictions": probabilities.argmax(-1).tolist(),
                    "probabilities": probabilities.tolist(),
                },
            )

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # noqa: A002 - http.server's signature
            del format, args  # keep the example's output readable

    return PredictHandler


def post_json(url: str, body: dict) -> tuple[int, dict]:
    """POST `body` as JSON; return the status and the decoded reply."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the five steps; return the largest prediction differences found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--dir",
        default=None,
        help="where to write the files "
        "(default: a temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep the server running until Ctrl-C"
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.smoke else 10)
    x, y = make_data(512 if args.smoke else 4096)
    x_new = make_data(64, seed=1)[0]

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or scratch
        os.makedirs(folder, exist_ok=True)
        results: dict[str, float] = {}

        # 1. Train.
        model = build_model()
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        expected = model.predict(x_new, verbose=0)
        results["accuracy"] = float(
            model.evaluate(x, y, return_dict=True, verbose=0)["accuracy"]
        )

        # 2. The whole model, optimizer included: load and go on training.
        model_path = os.path.join(folder, "model.fkz")
        save_model(model, model_path)
        restored = load_model(model_path)
        results["load_model_max_difference"] = float(
            np.abs(restored.predict(x_new, verbose=0) - expected).max()
        )
        # The optimizer state and the epoch count came along: one more epoch of
        # the reloaded model is the original's next epoch, to the bit.
        restored.fit(x, y, batch_size=32, epochs=1, verbose=0)
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        results["continued_max_difference"] = max(
            float(np.abs(a - b).max())
            for a, b in zip(restored.get_weights(), model.get_weights(), strict=True)
        )
        expected = model.predict(x_new, verbose=0)
        print(
            f"{model_path}: {os.path.getsize(model_path)} bytes; reloaded, max "
            f"|difference| {results['load_model_max_difference']:.1e}; one more "
            "epoch of training, reloaded against original: max |weight difference| "
            f"{results['continued_max_difference']:.1e}"
        )

        # 3. Weights only, into a model built by code.
        weights_path = os.path.join(folder, "model.weights.safetensors")
        save_weights(model, weights_path)
        fresh = build_model(seed=1)  # other initial weights...
        load_weights(fresh, weights_path)  # ...replaced by the saved ones
        results["load_weights_max_difference"] = float(
            np.abs(fresh.predict(x_new, verbose=0) - expected).max()
        )
        print(
            f"{weights_path}: weights reloaded, max |difference| "
            f"{results['load_weights_max_difference']:.1e}"
        )

        # 4. Export the inference program; any batch size (the batch axis is symbolic).
        export_path = os.path.join(folder, "model.fkx")
        export_model(
            model, export_path, jax.ShapeDtypeStruct((None, FEATURES), jnp.float32)
        )
        served = load_exported(export_path)  # needs no funkeras model code
        exported_diff = max(
            float(np.abs(np.asarray(served(x_new[:rows])) - expected[:rows]).max())
            for rows in (1, 7, len(x_new))
        )
        results["exported_max_difference"] = exported_diff
        print(f"{export_path}: {served}; max |difference| {exported_diff:.1e}")

        # 5. Serve the exported artefact over HTTP.
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", args.port), make_handler(served)
        )
        url = f"http://127.0.0.1:{server.server_address[1]}/predict"
        if args.serve:
            print(f"serving {export_path} at {url} (Ctrl-C to stop)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.server_close()
            return results
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            status, reply = post_json(url, {"instances": x_new[:3].tolist()})
            bad_status, bad_reply = post_json(url, {"instances": [[1.0, 2.0]]})
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        served = np.asarray(reply["probabilities"], np.float32)
        results["served_max_difference"] = float(np.abs(served - expected[:3]).max())
        results["served_status"] = float(status)
        results["bad_request_status"] = float(bad_status)
        print(
            f"POST {url} -> {status} {reply['predictions']} "
            f"(max |difference| {results['served_max_difference']:.1e})"
        )
        print(f"a malformed request -> {bad_status} {bad_reply['error']}")
    return results


if __name__ == "__main__":
    main()
