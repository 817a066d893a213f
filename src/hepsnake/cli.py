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
