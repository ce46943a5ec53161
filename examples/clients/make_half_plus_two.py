#!/usr/bin/env python3
"""Writes the half_plus_two SavedModel (y = 0.5 * x + 2) in TF Serving's layout: DIR/<version>/.

    python examples/clients/make_half_plus_two.py ./half_plus_two          # version 1
    python examples/clients/make_half_plus_two.py ./half_plus_two --version 2 --slope 0.25

Needs TensorFlow (`pip install tensorflow-cpu`, or the dev virtualenv, which has it). The signature
`serving_default` takes `x` (float32, any length) and returns `y`, so REST instances are plain numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def make(base: Path, version: int = 1, slope: float = 0.5, offset: float = 2.0) -> Path:
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.slope = tf.Variable(slope, dtype=tf.float32)
            self.offset = tf.Variable(offset, dtype=tf.float32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])  # type: ignore[misc]
        def __call__(self, x: object) -> dict[str, object]:
            return {"y": x * self.slope + self.offset}

    module = HalfPlusTwo()
    target = base / str(version)
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.__call__})
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="model base directory (versions go below it)")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--slope", type=float, default=0.5)
    parser.add_argument("--offset", type=float, default=2.0)
    args = parser.parse_args()
    print(make(args.dir, args.version, args.slope, args.offset))


if __name__ == "__main__":
    main()
