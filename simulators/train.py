"""One training on its own, run as a worker's trainer runs it: ``python -m simulators.train``.

    python -m simulators.train --architecture lstm --dataset digits --epochs 2 --out DIR
    python -m simulators.train --point point.json [--options options.json] --out DIR
    python -m simulators.train --group RUN_DIR/sims/<id>/group.json --options options.json   # vectorised

The point's flags come from the point-field table (``hypers/fields.py``); the command writes the
point's record into ``--out`` and answers a training request for it in this process.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulators.inbox import TrainingRequest
from simulators.options import TrainingOptions
from simulators.records import read_json, write_json
from simulators.run_dir import SimDir
from simulators.trainer_server import answer

STANDALONE = "standalone"  # the identifier of a point given by flags


def parser() -> argparse.ArgumentParser:
    from hypers.fields import FIELDS  # the trainer itself never needs the table: only these flags do

    p = argparse.ArgumentParser(prog="python -m simulators.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="the training's directory: its point, history and result records "
                   "(default: a new temporary directory, named in the result line)")
    p.add_argument("--point", type=Path, help="JSON file with the point's fields (instead of the flags below)")
    p.add_argument("--options", type=Path, help="JSON file with training options (the spec's simulator fields)")
    p.add_argument("--group", type=Path, metavar="GROUP_JSON",
                   help="JSON list of sim dirs, each with its point record: one shape, trained together")
    for row in FIELDS:
        if row.flag:
            default = "required" if row.default is None else f"default {row.default!r}"
            if row.name == "val_corruption":
                default = "default: as --corruption (seen)"
            p.add_argument(f"--{row.name.replace('_', '-')}", dest=row.name, metavar=row.name.upper(),
                           help=f"{row.help + '; ' if row.help else ''}{default}")
    return p


def point_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The point the flags describe: each value parsed and checked by its row of the table."""
    from hypers.fields import FIELDS, with_seen_validation
    from hypers.rules import broken_rule

    if not args.architecture or not args.dataset:
        raise SystemExit("error: give --point FILE, or both --architecture and --dataset")
    point: dict[str, Any] = {"identifier": STANDALONE}
    for row in FIELDS:
        raw = getattr(args, row.name, None)
        try:
            point.setdefault(row.name, row.default if raw is None else row.validate(row.parse(raw)))
        except ValueError as error:
            raise SystemExit(f"error: --{row.name.replace('_', '-')}: {error}") from None
    point = with_seen_validation(point, {name: value for name, value in vars(args).items() if value is not None})
    rule = broken_rule(point)
    if rule:
        given = ", ".join(f"--{name.replace('_', '-')} {point[name]}" for name in rule.fields)
        raise SystemExit(f"error: {rule.reason}; got {given}: change one of them")
    return point


def _read(flag: str, path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {flag}: cannot read {path} as JSON ({error})") from None


def request_of(args: argparse.Namespace) -> TrainingRequest:
    """The training request the command line describes; the point's record written first."""
    if args.group and args.out:
        raise SystemExit("error: give --out DIR for one training, or --group FILE for a group, not both")
    try:
        options = TrainingOptions.model_validate(_read("--options", args.options) if args.options else {})
    except ValidationError as error:
        raise SystemExit(f"error: --options: {error}") from None
    if args.group:
        return TrainingRequest(sim_dirs=[Path(path) for path in _read("--group", args.group)], options=options)
    sim_dir = SimDir(args.out or Path(tempfile.mkdtemp(prefix="taskgen-train-"))).make()
    write_json(sim_dir.point, _read("--point", args.point) if args.point else point_from_flags(args))
    return TrainingRequest(sim_dirs=[sim_dir.path], options=options)


def main(argv: list[str] | None = None) -> int:
    return answer(request_of(parser().parse_args(argv))).code


if __name__ == "__main__":
    sys.exit(main())
