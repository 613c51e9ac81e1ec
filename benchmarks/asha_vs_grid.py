"""ASHA against the full grid on the same study: does successive halving pick the grid's best
configuration per (architecture, task), and for what share of the grid's training epochs?

    python benchmarks/asha_vs_grid.py --spec ensembles/quick_asha.yaml --out /tmp/asha_vs_grid

Runs the spec twice through run_ensemble.py (as asha, then as the grid of the same space at the
full budget with the same replicates), prints both choices per cell and the epoch ratio, and
writes comparison-LABEL.json. ``--reuse-grid`` keeps a grid run already in OUT/grid (the grid does not
depend on asha's settings), so several asha settings compare against one grid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from ensembles.loading import load_spec  # noqa: E402
from generators.asha import score  # noqa: E402
from simulators.run_dir import RunDir  # noqa: E402

CONFIGURATION = ["learning_rate", "hidden_dim"]
CELL = ["architecture", "dataset", "permute", "pad", "orientation"]


def run(spec: Path, out: Path, nworkers: int, overrides: list[str], reuse: bool = False) -> pd.DataFrame:
    if not (reuse and RunDir(out).history.exists()):
        command = [sys.executable, "run_ensemble.py", "--spec", str(spec), "--out", str(out),
                   "--nworkers", str(nworkers)]
        for assignment in overrides:
            command += ["--set", assignment]
        subprocess.run(command, cwd=PROJECT_ROOT, check=True)
    H = np.load(RunDir(out).history)
    frame = pd.DataFrame({name: H[name] for name in H.dtype.names if H[name].ndim == 1})
    results = zip(frame["status"], frame["val_accuracy"], frame["val_loss"])
    frame["score"] = [score(status, accuracy, loss) for status, accuracy, loss in results]
    return frame


def epochs_trained(frame: pd.DataFrame) -> int:
    """Epochs actually trained: a promoted training inherits its parent's epochs."""
    inherited = frame["resume_from"].map(frame.set_index("identifier")["epochs"]).fillna(0)
    return int((frame["epochs_completed"] - inherited).sum())


def best_configurations(frame: pd.DataFrame) -> pd.DataFrame:
    means = frame.groupby(CELL + CONFIGURATION)["score"].agg(["mean", "std", "count"]).reset_index()
    return means.loc[means.groupby(CELL)["mean"].idxmax()].set_index(CELL)


def compare(grid: pd.DataFrame, asha: pd.DataFrame, full_budget: int) -> pd.DataFrame:
    grid_best = best_configurations(grid)
    asha_best = best_configurations(asha[asha["epochs"] == full_budget])
    grid_means = grid.groupby(CELL + CONFIGURATION)["score"].mean()
    rows = []
    for cell, chosen in asha_best.iterrows():
        best = grid_best.loc[cell]
        chosen_key = (*cell, *(chosen[c] for c in CONFIGURATION))
        grid_mean_of_chosen = grid_means.loc[chosen_key]
        rows.append({
            **dict(zip(CELL, cell)),
            "grid_best": "/".join(f"{best[c]:g}" for c in CONFIGURATION),
            "grid_score": round(best["mean"], 4),
            "grid_spread": round(best["std"], 4),
            "asha_best": "/".join(f"{chosen[c]:g}" for c in CONFIGURATION),
            "grid_score_of_asha_best": round(grid_mean_of_chosen, 4),
            "same": all(chosen[c] == best[c] for c in CONFIGURATION),
            "within_spread": grid_mean_of_chosen >= best["mean"] - best["std"],
        })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=PROJECT_ROOT / "ensembles" / "quick_asha.yaml")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nworkers", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a field of the asha run's spec (repeatable)")
    parser.add_argument("--reuse-grid", action="store_true", help="keep a grid run already in OUT/grid")
    parser.add_argument("--label", default="asha", help="the asha run goes to OUT/LABEL (default asha)")
    args = parser.parse_args()
    spec = load_spec(args.spec, args.overrides)
    full_budget = spec.budgets[-1]
    grid = run(args.spec, args.out / "grid", args.nworkers,
               ["generator.kind=grid", f"space.choices.epochs=[{full_budget}]"], reuse=args.reuse_grid)
    asha = run(args.spec, args.out / args.label, args.nworkers, args.overrides)
    table = compare(grid, asha, full_budget)
    ratio = epochs_trained(asha) / epochs_trained(grid)
    print(table.to_string(index=False))
    print(f"cells where asha's choice equals the grid's: {int(table['same'].sum())}/{len(table)}; "
          f"within the grid's replicate spread: {int(table['within_spread'].sum())}/{len(table)}")
    print(f"epochs trained: asha {epochs_trained(asha)}, grid {epochs_trained(grid)}, ratio {ratio:.2f}")
    (args.out / f"comparison-{args.label}.json").write_text(json.dumps(
        {"cells": table.to_dict(orient="records"), "asha_epochs": epochs_trained(asha),
         "grid_epochs": epochs_trained(grid), "ratio": ratio, "overrides": args.overrides},
        indent=1, default=str))


if __name__ == "__main__":
    main()
