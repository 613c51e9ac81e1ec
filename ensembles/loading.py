"""Reading a spec: YAML file -> space file inlined -> command-line overrides -> validation.

Every problem becomes one ``SpecError`` whose lines name the field (as a dotted path) and
what to do, so that the user fixes the spec before any worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ensembles.schema import EnsembleSpec
from simulators.tasks import task_module

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = PROJECT_ROOT / "ensembles" / "quick.yaml"


class SpecError(ValueError):
    """A spec that cannot run; the message is meant for the user, one problem per line."""

    def __init__(self, message: str, missing_data: bool = False):
        super().__init__(message)
        self.missing_data = missing_data


def _read_yaml(path: Path, what: str) -> Any:
    """The YAML file's content; a missing, unreadable, binary or non-UTF-8 file is one SpecError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{what}: no such file: {path}") from None
    except UnicodeDecodeError as error:
        raise SpecError(f"{what}: {path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                        f"{error.start}): give a YAML spec file") from None
    except OSError as error:
        raise SpecError(f"{what}: cannot read {path}: {error.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.reader.ReaderError as error:
        raise SpecError(f"{what}: {path} is not a text file ({error.reason} at offset {error.position}): "
                        "give a YAML spec file") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{what}: {path} is not valid YAML: {error}") from None


def _resolve_space_file(value: str, spec_dir: Path) -> Path:
    """A space given by file name: next to the spec, else in the project (e.g. hypers/...)."""
    for base in (spec_dir, PROJECT_ROOT, PROJECT_ROOT / "hypers"):
        candidate = (base / value).resolve()
        if candidate.is_file():
            return candidate
    raise SpecError(f"space: no file '{value}' next to the spec or in {PROJECT_ROOT / 'hypers'}")


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``key.path=value`` (value read as YAML) to the raw spec, Hydra-style."""
    key, separator, text = assignment.partition("=")
    if not separator or not key:
        raise SpecError(f"--set {assignment!r}: write it as key.path=value, e.g. --set generator.replicates=3")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(f"--set {key}: the value {text!r} is not valid YAML: {error}") from None
    *parents, leaf = key.split(".")
    node = raw
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SpecError(f"--set {key}: '{'.'.join(parents[: depth + 1])}' is a value, not a section")
        node = child
    node[leaf] = value


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_fields(EnsembleSpec, item["loc"][:-1])
            message = "unknown field" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        lines.append(f"{prefix}{location}: {message}")
    return "\n".join(lines)


def _allowed_fields(model: type[BaseModel], location: tuple) -> list[str]:
    """The field names of the (nested) model at ``location``, for 'unknown field' messages."""
    for part in location:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def load_spec(path: Path | None = None, overrides: list[str] = (), **fields: Any) -> EnsembleSpec:
    """The validated spec at ``path`` (default ensembles/quick.yaml) with ``--set`` overrides and
    command-line ``fields`` (comms, nworkers, out) applied when not None."""
    path = Path(path) if path else DEFAULT_SPEC
    raw = _read_yaml(path, "--spec")
    if not isinstance(raw, dict):
        raise SpecError(f"--spec: {path} must hold a mapping of spec fields, got {type(raw).__name__}")
    if isinstance(raw.get("space"), str):
        raw["space"] = _read_yaml(_resolve_space_file(raw["space"], path.parent), "space")
    for assignment in overrides:
        apply_override(raw, assignment)
    raw.update({name: value for name, value in fields.items() if value is not None})
    try:
        spec = EnsembleSpec.model_validate(raw)
    except ValidationError as error:
        raise SpecError(f"{path}:\n" + format_validation_error(error, "  ")) from None
    return spec


def check_datasets(spec: EnsembleSpec) -> None:
    """Fail now, naming the file and how to fetch it, if a dataset is not in the local cache."""
    problems = []
    for dataset in spec.space.choices["dataset"]:
        problems += task_module(dataset).missing_files(spec.simulator.data_dir)
    if problems:
        raise SpecError(
            "datasets missing from the local cache:\n" + "\n".join(f"  {p}" for p in problems), missing_data=True
        )


def spec_yaml(spec: EnsembleSpec) -> str:
    """The resolved spec, space inlined: a run directory's record of exactly what ran."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
