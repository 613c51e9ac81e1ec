"""How fast can an LSTM train on this machine at all? A plain ``jax.lax.scan`` LSTM, no Keras,
trained by a jitted SGD step on sequential-MNIST-shaped data, against the floating-point work
it has to do.

An LSTM step at batch B, hidden H costs 3 matrix products of B x H x 4H multiply-adds (forward,
and two for the backward pass), so 24 B H^2 FLOP; the sequence's T steps make one batch. The
script prints samples/s, samples per CPU-second and the GFLOP/s that this implies: the floor
under what any framework's recurrent training reaches with these small products, and so the
ceiling of a speed-up over code that already runs them well (``benchmarks/unrolled_baseline.py``).
XLA's CPU options are taken from ``XLA_FLAGS`` as usual.

    python benchmarks/lstm_floor.py --json lstm_floor.json
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false python benchmarks/lstm_floor.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.train_throughput import machine


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10, help="timed batches, after one that compiles")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def lstm_train_step(batch: int, steps: int, hidden: int, classes: int = 10):
    """A jitted SGD step of an LSTM classifier, its parameters and one batch of data."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    params = {"input": jax.random.normal(keys[0], (1, 4 * hidden)) * 0.1,
              "recurrent": jax.random.normal(keys[1], (hidden, 4 * hidden)) * 0.05,
              "bias": jnp.zeros(4 * hidden), "output": jax.random.normal(keys[2], (hidden, classes)) * 0.1}
    x = jax.random.normal(keys[3], (batch, steps, 1))
    y = jax.random.randint(keys[4], (batch,), 0, classes)

    def loss(p, x, y):
        projected = jnp.einsum("btf,fg->tbg", x, p["input"]) + p["bias"]

        def step(carry, x_t):
            h, c = carry
            i, f, g, o = jnp.split(x_t + h @ p["recurrent"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            return (jax.nn.sigmoid(o) * jnp.tanh(c), c), None

        (h, _), _ = jax.lax.scan(step, (jnp.zeros((batch, hidden)), jnp.zeros((batch, hidden))), projected)
        return -jnp.mean(jax.nn.log_softmax(h @ p["output"])[jnp.arange(batch), y])

    @jax.jit
    def train_step(p, x, y):
        value, grads = jax.value_and_grad(loss)(p, x, y)
        return jax.tree.map(lambda w, g: w - 1e-3 * g, p, grads), value

    return train_step, params, x, y


def measure(args) -> dict:
    import jax

    train_step, params, x, y = lstm_train_step(args.batch, args.steps, args.hidden)
    params, value = train_step(params, x, y)
    value.block_until_ready()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.batches):
        params, value = train_step(params, x, y)
    value.block_until_ready()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    samples = args.batches * args.batch
    flop = 24 * args.batch * args.hidden**2 * args.steps * args.batches
    return {"steps": args.steps, "hidden": args.hidden, "batch": args.batch, "samples_per_s": round(samples / wall, 1),
            # significant digits: tiny test sizes too
            "samples_per_cpu_s": round(samples / cpu, 1), "gflop_per_s": float(f"{flop / wall / 1e9:.4g}"),
            "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "load_before": round(os.getloadavg()[0], 2)}


def main(argv=None) -> int:
    args = parse_args(argv)
    row = measure(args)
    print(" ".join(f"{name}={value}" for name, value in row.items()))
    if args.json:
        args.json.write_text(json.dumps({"environment": machine(), "result": row}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
