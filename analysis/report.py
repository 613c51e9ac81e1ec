"""Writing the analysis: a CSV per table, a PNG per figure, and one self-contained HTML page
(figures embedded as base64, the runs' specs and software versions included) or Markdown."""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import escape

from analysis.loading import Runs
from analysis.pipeline import Analysis
from simulators.records import Status
from simulators.run_dir import RunDir

FIGURES_DIR = "figures"
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True)
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "jinja2", "libensemble", "keras",
            "tensorflow", "tensorflow-cpu", "jax")
MARKDOWN_ROWS = 40  # longer tables are cut in Markdown (the CSV has them all)
COUNT_ORDER = ("rows", "finished", *(status.value for status in Status), "unfinished", "not_started", "missing")
COUNT_HELP = {
    "unfinished": "in the history without a result: running, queued, or cut off by a kill",
    "not_started": "described by the spec but not yet in the history (grid and random runs)",
    "missing": "unfinished + not_started",
}


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def run_libensemble_versions(runs: Runs) -> dict[str, str]:
    """The libEnsemble version each run logged (ensemble.log), if it did."""
    found = {}
    for source in runs.sources:
        log = RunDir(source if source.is_dir() else source.parent).log
        if log.exists():
            with open(log, errors="replace") as handle:
                for line in handle:
                    match = re.search(r"libE version (\S+)", line)
                    if match:
                        found[str(source)] = match.group(1)
                        break
    return found


def format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "" if np.isnan(value) else str(value)
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda column: column.map(format_value)) if not frame.empty else frame


def html_table(frame: pd.DataFrame) -> str:
    """A plain HTML table: numbers right-aligned, text left-aligned, everything escaped."""
    numeric = [pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) for dtype in frame.dtypes]
    cell = lambda tag, text, number: f'<{tag}{" class=num" if number else ""}>{escape(text)}</{tag}>'  # noqa: E731
    head = "".join(cell("th", name, number) for name, number in zip(frame.columns, numeric))
    body = ["<tr>" + "".join(cell("td", text, number) for text, number in zip(row, numeric)) + "</tr>"
            for row in formatted(frame).itertuples(index=False)]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def markdown_table(frame: pd.DataFrame, limit: int | None = MARKDOWN_ROWS) -> str:
    if frame.empty:
        return "_(no rows)_"
    shown = formatted(frame.head(limit) if limit else frame)
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, shown.columns)) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in shown.itertuples(index=False)]
    if limit and len(frame) > limit:
        lines.append(f"\n_{len(frame) - limit} more rows in the CSV_")
    return "\n".join(lines)


def write_outputs(analysis: Analysis, out: Path) -> dict[str, Path]:
    """CSV files and PNG figures into ``out``; returns figure name -> path."""
    from analysis.figures import save

    out.mkdir(parents=True, exist_ok=True)
    for table in analysis.tables:
        table.frame.to_csv(out / f"{table.name}.csv", index=False)
    paths = {}
    for figure in analysis.figures:
        paths[figure.name] = save(figure.figure, out / FIGURES_DIR / f"{figure.name}.png")
    return paths


def close_figures(analysis: Analysis) -> None:
    import matplotlib.pyplot as plt

    for figure in analysis.figures:
        plt.close(figure.figure)


def _counts(analysis: Analysis) -> list[tuple[str, int, str]]:
    return [(name, analysis.counts[name], COUNT_HELP.get(name, "")) for name in COUNT_ORDER if name in analysis.counts]


def render_markdown(analysis: Analysis, runs: Runs, figure_paths: dict[str, Path] | None = None,
                    relative_to: Path | None = None) -> str:
    parts = ["# taskgen analysis", "", "Sources: " + ", ".join(str(source) for source in runs.sources), ""]
    counts = pd.DataFrame(_counts(analysis), columns=["trainings", "count", "meaning"])
    parts += ["## Trainings", "", markdown_table(counts, None), ""]
    if analysis.notes:
        parts += ["## Notes", ""] + [f"- {note}" for note in analysis.notes] + [""]
    figures = {figure.name: figure for figure in analysis.figures}
    for table in analysis.tables:
        parts += [f"## {table.title}", "", table.description, "", markdown_table(table.frame), ""]
        for name in _figures_after(table.name):
            if name in figures and figure_paths and name in figure_paths:
                path = figure_paths[name].relative_to(relative_to) if relative_to else figure_paths[name]
                parts += [f"![{figures[name].title}]({path.as_posix()})", "", f"_{figures[name].description}_", ""]
    if figure_paths is None and analysis.figures:
        parts += ["_Figures are written with --out REPORT_DIR._", ""]
    parts += ["## Software", "", ", ".join(f"{name} {version}" for name, version in software_versions().items()), ""]
    return "\n".join(parts)


def _figures_after(table_name: str) -> tuple[str, ...]:
    return {
        "architecture_effects": ("architecture_effects", "metric_by_architecture"),
        "pairwise_proportions": ("pairwise_proportions",),
        "learning_curves": ("learning_curves",),
        "adjoint_norms": ("adjoint_vs_metric",),
    }.get(table_name, ())


def render_html(analysis: Analysis, runs: Runs, figure_paths: dict[str, Path]) -> str:
    figures = {figure.name: figure for figure in analysis.figures}
    placed_anywhere = {name for table in analysis.tables for name in _figures_after(table.name)}
    sections = []
    for table in analysis.tables:
        names = [name for name in _figures_after(table.name) if name in figure_paths]
        sections.append({
            "name": table.name, "title": table.title, "description": table.description, "rows": len(table.frame),
            "html": html_table(table.frame),
            "figures": [_embedded(figures[name], figure_paths[name]) for name in names],
        })
    orphans = [name for name in figure_paths if name not in placed_anywhere]
    if orphans and sections:
        sections[0]["figures"] += [_embedded(figures[name], figure_paths[name]) for name in orphans]
    return _TEMPLATES.get_template("report.html.j2").render(
        title=", ".join(source.name for source in runs.sources),
        sources=[str(source) for source in runs.sources],
        generated=datetime.datetime.now().isoformat(timespec="seconds"),
        counts=_counts(analysis), notes=analysis.notes, tables=sections,
        specs=list(runs.specs.items()), versions=list(software_versions().items()),
        run_versions=list(run_libensemble_versions(runs).items()),
    )


def _embedded(figure, path: Path) -> dict:
    return {"title": figure.title, "description": figure.description,
            "data": base64.b64encode(path.read_bytes()).decode("ascii")}


def write_report(analysis: Analysis, runs: Runs, out: Path, fmt: str = "html") -> Path:
    """Everything into ``out``; returns the report file (index.html or report.md)."""
    figure_paths = write_outputs(analysis, out)
    if fmt == "markdown":
        path = out / "report.md"
        path.write_text(render_markdown(analysis, runs, figure_paths, relative_to=out))
    else:
        path = out / "index.html"
        path.write_text(render_html(analysis, runs, figure_paths))
    return path
