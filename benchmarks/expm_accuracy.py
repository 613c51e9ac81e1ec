"""How accurate and how orthogonal expRNN's B = expm(A) is in float32, on this backend.

For skew A from the Cayley and Henaff initialisations plus random skew perturbations of growing
size (training moves A away from its start), the worst ||B - expm(A)||_max against scipy in
float64, and ||B^T B - I||_max of the backend's expm alone and after taskgen's Newton-Schulz step.

    python benchmarks/expm_accuracy.py --units 32 128 256 --json expm.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.architectures.dynamical import (
    cayley_skew,
    henaff_skew,
    matrix_exponential,
    orthogonal_polish,
)

PERTURBATIONS = (0.0, 0.1, 0.5)  # std of the random skew part added to the initialisation
DRAWS = 3


def skew_matrices(units: int):
    rng = np.random.default_rng(0)
    for initial in (cayley_skew, henaff_skew):
        for scale in PERTURBATIONS:
            for draw in range(DRAWS):
                upper = np.triu(rng.normal(scale=scale, size=(units, units)), 1)
                yield (initial(units, draw) + upper - upper.T).astype("float32")


def worst_errors(units: int) -> dict:
    from keras import ops

    worst = {"units": units, "expm_error": 0.0, "orthogonality": 0.0, "orthogonality_polished": 0.0}
    for a in skew_matrices(units):
        raw = ops.convert_to_tensor(a)
        b = ops.convert_to_numpy(matrix_exponential(raw)).astype("float64")
        polished = ops.convert_to_numpy(orthogonal_polish(matrix_exponential(raw))).astype("float64")
        identity = np.eye(units)
        worst["expm_error"] = max(worst["expm_error"], np.abs(b - scipy.linalg.expm(a.astype("float64"))).max())
        worst["orthogonality"] = max(worst["orthogonality"], np.abs(b.T @ b - identity).max())
        worst["orthogonality_polished"] = max(worst["orthogonality_polished"],
                                              np.abs(polished.T @ polished - identity).max())
    return {name: value if name == "units" else float(f"{value:.2g}") for name, value in worst.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, nargs="+", default=[32, 128, 256])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import keras

    rows = [worst_errors(units) for units in args.units]
    print(f"backend {keras.backend.backend()}, float32, worst of {2 * len(PERTURBATIONS) * DRAWS} matrices")
    print(f"{'units':>5} {'|B - expm(A)|':>14} {'|BtB - I|':>10} {'polished':>10}")
    for row in rows:
        print(f"{row['units']:>5} {row['expm_error']:>14.1e} {row['orthogonality']:>10.1e} "
              f"{row['orthogonality_polished']:>10.1e}")
    if args.json:
        args.json.write_text(json.dumps({"backend": keras.backend.backend(), "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
