"""``hepsnake <verb>``: parse arguments, call the stage function, turn failures into one line."""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from hepsnake import __version__
from hepsnake.config import load
from hepsnake.errors import HepsnakeError

log = logging.getLogger("hepsnake")


def cmd_simulate(args: argparse.Namespace) -> None:
    from hepsnake.simulate.toy import simulate_sample

    n = simulate_sample(load(args.config), args.sample, args.output)
    log.info("simulate %s: %d jets → %s", args.sample, n, args.output)


def cmd_convert(args: argparse.Namespace) -> None:
    from hepsnake.convert.convert import convert

    report = convert(
        load(args.config), args.sample, args.output, args.summary, show_progress=args.progress
    )
    for skipped in report["skipped"]:
        log.warning("skipped %s", skipped["reason"])
    log.info("convert %s: %d jets → %s", args.sample, report["jets"], args.output)


def cmd_split(args: argparse.Namespace) -> None:
    from hepsnake.prepare.split import split

    outputs = dict(zip(("train", "val", "test"), args.outputs, strict=True))
    debug = dict(zip(("train", "val", "test"), args.debug, strict=True)) if args.debug else None
    report = split(
        load(args.config), args.inputs, outputs, args.summary, debug, args.control, args.plot
    )
    counts = {s: sum(r["jets"] for r in report["rows"] if r["split"] == s) for s in outputs}
    log.info("split (%s): %s", report["kind"], counts)


def cmd_norm(args: argparse.Namespace) -> None:
    from hepsnake.prepare.norm import norm_stats

    norm = norm_stats(load(args.config), args.train, args.norm, args.class_dict)
    log.info("norm: %d variables → %s", sum(len(v) for v in norm.values()), args.norm)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hepsnake", description=__doc__)
    top.add_argument("--version", action="version", version=f"hepsnake {__version__}")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        name: str, func: Callable[[argparse.Namespace], None], text: str
    ) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--config",
            default="config/config.yaml",
            help="config YAML path, or the inline JSON slice a Snakemake rule passes",
        )
        sub.set_defaults(func=func)
        return sub

    sim = verb("simulate", cmd_simulate, "write one toy LLP sample as a ROOT TTree")
    sim.add_argument("--sample", required=True, help="a key of simulate.samples")
    sim.add_argument("--output", required=True)

    conv = verb("convert", cmd_convert, "convert one sample's ROOT files to FTAG-layout HDF5")
    conv.add_argument("--sample", required=True, help="a sample name from the sample list")
    conv.add_argument("--output", required=True, help="output .h5")
    conv.add_argument(
        "--summary", required=True, help="output JSON: per-file counts, skipped files"
    )
    conv.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a rich progress bar (a final line only, when stderr is not a terminal)",
    )
    spl = verb("split", cmd_split, "event-level train/val/test splits with weights")
    spl.add_argument("--inputs", nargs="+", required=True, help="converted sample .h5 files")
    spl.add_argument("--outputs", nargs=3, required=True, metavar=("TRAIN", "VAL", "TEST"))
    spl.add_argument("--debug", nargs=3, metavar=("TRAIN", "VAL", "TEST"), help="debug subsets")
    spl.add_argument("--summary", required=True, help="output JSON: jets per split/sample/class")
    spl.add_argument("--control", action="store_true", help="control-region (data/MC) samples")
    spl.add_argument("--plot", help="reweighting check plot (PNG)")

    nrm = verb("norm", cmd_norm, "normalisation stats and class weights from the train split")
    nrm.add_argument("--train", required=True)
    nrm.add_argument("--norm", required=True, help="output norm_dict.yaml")
    nrm.add_argument("--class-dict", required=True, help="output class_dict.yaml")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepsnake`` console script."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("HEPSNAKE_LOG", "INFO"), format="%(message)s")
    try:
        args.func(args)
    except HepsnakeError as exc:
        print(f"hepsnake {args.verb}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
