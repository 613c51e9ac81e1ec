"""python -m analysis RUN_DIR [RUN_DIR ...] [--csv FILE] [--out REPORT_DIR] [--format html|markdown]
[--status] [--task TASK] [--metric val_accuracy]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from analysis.loading import AnalysisError

REPORT_SUBDIR = "analysis"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Tables, figures and a report from taskgen runs (history.npy and sims/ records), "
                    "or a progress summary of a running ensemble.",
    )
    p.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR",
                   help="run directories (several are merged) or history .npy files")
    p.add_argument("--csv", type=Path, metavar="FILE", help="analyse a table with the history's column names instead")
    p.add_argument("--out", type=Path, metavar="REPORT_DIR",
                   help=f"where the report, CSV tables and figures go; default RUN_DIR/{REPORT_SUBDIR} "
                        f"(FILE's folder/<name>_{REPORT_SUBDIR} for --csv); with --format markdown, "
                        "nothing is written unless given")
    p.add_argument("--format", choices=("html", "markdown"), default="html",
                   help="html: REPORT_DIR/index.html (self-contained); markdown: printed, and REPORT_DIR/report.md")
    p.add_argument("--status", action="store_true", help="print the progress of each RUN_DIR and exit (read-only)")
    p.add_argument("--task", metavar="TASK", help="task of the learning-curve figure, e.g. digits-none-False")
    p.add_argument("--metric", default="val_accuracy",
                   help="column ranking the trainings (default val_accuracy; tasks without it use val_loss)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except AnalysisError as error:
        print(f"analysis: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.status:
        if not args.run_dirs:
            raise AnalysisError("--status needs RUN_DIR")
        from analysis.status import status_report

        print("\n\n".join(status_report(path) for path in args.run_dirs))
        return 0
    if bool(args.csv) == bool(args.run_dirs):
        raise AnalysisError("give RUN_DIR [RUN_DIR ...] or --csv FILE (one of them)")

    from analysis.loading import load_csv, load_runs

    runs = load_csv(args.csv) if args.csv else load_runs(args.run_dirs)  # input errors before the slow imports
    from analysis.pipeline import analyse
    from analysis.report import close_figures, render_markdown, write_report

    out = args.out or _default_out(args)
    draw = out is not None
    analysis = analyse(runs, metric=args.metric, curve_task=args.task, draw=draw)
    if args.format == "markdown" and out is None:
        print(render_markdown(analysis, runs))
        return 0
    try:
        path = write_report(analysis, runs, out, args.format)
    except OSError as error:
        close_figures(analysis)
        raise AnalysisError(f"cannot write the report to {out}: {error}") from None
    if args.format == "markdown":
        print(path.read_text())
    counts = analysis.counts
    print(f"{counts['finished']} trainings finished ({counts['ok']} ok, {counts['diverged']} diverged, "
          f"{counts['failed']} failed, {counts['timeout']} timeout), {counts['missing']} missing; "
          f"report: {path}", file=sys.stderr if args.format == "markdown" else sys.stdout)
    return 0


def _default_out(args: argparse.Namespace) -> Path | None:
    if args.format == "markdown":
        return None
    if args.csv:
        return args.csv.parent / f"{args.csv.stem}_{REPORT_SUBDIR}"
    first = args.run_dirs[0]
    return (first if first.is_dir() else first.parent) / REPORT_SUBDIR


if __name__ == "__main__":
    sys.exit(main())
