"""Rebuild transferkit/data/bundled/fashion_mnist_sample.npz from the full Fashion-MNIST idx files.

    apt-get install dataset-fashion-mnist && python scripts/make_bundled_sample.py

200 training images per class from Fashion-MNIST's training set and 100 per class from its test set,
drawn with a fixed seed. Fashion-MNIST is MIT-licensed (Zalando SE); the notice ships next to the file.
"""

from pathlib import Path

import numpy as np

from transferkit.data.datasets import load_fashion_mnist

OUT = Path(__file__).resolve().parents[1] / "transferkit" / "data" / "bundled" / "fashion_mnist_sample.npz"


def pick(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]))


def main() -> None:
    rng = np.random.default_rng(20261123)
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    tr, te = pick(train.y, 200, rng), pick(test.y, 100, rng)
    images = np.concatenate([train.X[tr], test.X[te]])
    labels = np.concatenate([train.y[tr], test.y[te]]).astype(np.uint8)
    split = np.concatenate([np.zeros(len(tr), np.uint8), np.ones(len(te), np.uint8)])
    np.savez_compressed(OUT, images=images, labels=labels, split=split)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {len(tr)} train + {len(te)} test images")


if __name__ == "__main__":
    main()
