"""``hepsnake <verb>``: parse arguments, call the stage function, turn failures into one line."""

import argparse
import logging
import os
import sys
from pathlib import Path

# torch's OpenMP threads busy-wait between small ops; on a 2-core machine that costs 10x
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from collections.abc import Callable, Sequence

from hepsnake import __version__
from hepsnake.config import load
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.atomic import WriteError, os_error, quiet_write_errors

log = logging.getLogger("hepsnake")


def cmd_simulate(args: argparse.Namespace) -> None:
    from hepsnake.simulate.toy import simulate_sample

    n = simulate_sample(load(args.config), args.sample, args.output)
    log.info("simulate %s: %d jets → %s", args.sample, n, args.output)


def cmd_convert(args: argparse.Namespace) -> None:
    from hepsnake import paths

    if args.part is None:
        from hepsnake.convert.convert import convert

        if not (args.output and args.summary):
            raise HepsnakeError("convert", "--output and --summary are needed without --part")
        output = args.output
        report = convert(load(args.config), args.sample, output, args.summary, args.progress)
    else:
        from hepsnake.convert.part import convert_part

        output = args.output or paths.part_file(args.sample, args.part)
        status = args.status or paths.part_status(args.sample, args.part)
        report = convert_part(
            load(args.config), args.sample, args.part, output, status, args.progress
        )
    for skipped in report["skipped"]:
        log.warning("skipped %s", skipped["reason"])
    log.info("convert %s: %d jets → %s", args.sample, report["jets"], output)


def cmd_gather(args: argparse.Namespace) -> None:
    from hepsnake import paths
    from hepsnake.convert.gather import gather

    output = args.output or paths.converted(args.sample)
    summary = args.summary or paths.convert_summary(args.sample)
    report = gather(load(args.config), args.sample, output, summary)
    log.info(
        "gather %s: %d jets from %d parts (%d failed) → %s",
        args.sample,
        report["jets"],
        report["parts"],
        len(report["failed_parts"]),
        output,
    )


def cmd_list_files(args: argparse.Namespace) -> None:
    from hepsnake import paths
    from hepsnake.convert.file_list import write_file_list

    output = args.output or paths.file_list(args.sample)
    files = write_file_list(load(args.config), args.sample, output)
    log.info("list-files %s: %d files → %s", args.sample, len(files), output)


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

    norm = norm_stats(
        load(args.config), args.train, args.norm, args.class_dict, classes_out=args.classes
    )
    log.info("norm: %d variables → %s", sum(len(v) for v in norm.values()), args.norm)


def cmd_train(args: argparse.Namespace) -> None:
    from hepsnake.training.run import train

    control = {"train": args.control_train, "val": args.control_val} if args.control_train else None
    summary = train(
        load(args.config),
        args.train,
        args.val,
        args.norm,
        args.class_dict,
        args.outdir,
        args.threads,
        control,
    )
    if summary:
        log.info("train: best epoch %s %s", summary["best_epoch"], summary["best"])


def cmd_tune(args: argparse.Namespace) -> None:
    from hepsnake.tune.study import run_trial

    paths = {"train": args.train, "val": args.val, "norm": args.norm}
    paths |= {"class_dict": args.class_dict}
    if args.control_train:
        paths |= {"control_train": args.control_train, "control_val": args.control_val}
    record = run_trial(load(args.config), args.job, paths, args.outdir, args.output, args.threads)
    log.info(
        "tune trial %d (job %d): %s %s",
        record["number"],
        args.job,
        record["state"],
        record["value"],
    )


def cmd_study(args: argparse.Namespace) -> None:
    from hepsnake.tune.best import tune_best

    summary = tune_best(
        load(args.config), args.trials, args.output, args.summary, args.history, args.importances
    )
    log.info(
        "tune %s: best trial %d, %s %.6g → %s",
        summary["name"],
        summary["best_trial"],
        summary["metric"],
        summary["best"],
        args.output,
    )


def cmd_track(args: argparse.Namespace) -> None:
    from hepsnake.tracking import track_models

    runs = track_models(load(args.config), args.models, args.artifacts, args.output)
    log.info("track: %d MLflow runs → %s", len(runs), args.output)


def cmd_compare(args: argparse.Namespace) -> None:
    from hepsnake.report.compare import compare

    table = compare(dict(zip(args.names, args.metrics, strict=True)), args.output, args.plot)
    for row in table["rows"]:
        log.info("%s: %s", row["name"], row["best"])


def cmd_predict(args: argparse.Namespace) -> None:
    from hepsnake.evaluate.predict import predict

    counts = predict(args.model, args.checkpoint, args.test, args.output, args.control)
    log.info("predict %s: %s → %s", args.model, counts, args.output)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from hepsnake.evaluate.stage import evaluate

    config = load(args.config)
    metrics = evaluate(config, args.model, args.predictions, args.training, args.output, args.plots)
    signal = config["evaluate"]["signal"]
    for name, entry in metrics["backgrounds"].items():
        bayes = f" (Bayes-optimal {entry['bayes_auc']:.4f})" if "bayes_auc" in entry else ""
        log.info("%s: AUC %s vs %s = %.4f%s", args.model, signal, name, entry["auc"], bayes)


def cmd_export(args: argparse.Namespace) -> None:
    from hepsnake.export.stage import export
    from hepsnake.provenance import git_commit

    config = load(args.config)  # validated: the schema filled every export option
    result = export(
        args.checkpoint,
        args.model,
        args.test,
        args.val,
        args.outdir,
        git_commit=git_commit(Path(args.repo)),
        threads=args.threads,
        signal=config["evaluate"]["signal"],
        **config["export"],
    )
    for name, target in result["targets"].items():
        state = "met" if target["met"] else "NOT met"
        log.info(
            "%s: %s = %s (target %s): %s",
            args.model,
            name,
            target["value"],
            target["target"],
            state,
        )


def cmd_report(args: argparse.Namespace) -> None:
    from hepsnake.report.markdown import report

    report(
        load(args.config),
        dict(zip(args.models, args.metrics, strict=True)),
        dict(zip(args.models, args.predictions, strict=True)),
        args.split_summary,
        args.convert_summaries,
        args.output,
        args.repo,
        args.exports,
        args.epochs,
        args.studies,
    )
    log.info("report → %s", args.output)


def cmd_install_profile(args: argparse.Namespace) -> None:
    from hepsnake.profiles import install_profile

    target = install_profile(args.name, args.source, args.dest, args.force)
    log.info("profile %s → %s (snakemake --profile %s)", args.name, target, args.name)


def cmd_init(args: argparse.Namespace) -> None:
    from hepsnake.init.starter import write_starter

    for line in write_starter(
        args.source, args.out, args.reader, args.force, args.tree, args.label
    ):
        print(line)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hepsnake",
        description="The stages of the hepsnake workflow, one verb per Snakemake rule. "
        "Each verb prints one error line and exits 1 on bad input.",
    )
    top.add_argument("--version", action="version", version=f"hepsnake {__version__}")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(
        name: str, func: Callable[[argparse.Namespace], None], text: str, config: bool = True
    ) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=text, description=text)
        if config:
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

    conv = verb(
        "convert",
        cmd_convert,
        "convert one part of a sample (--part), or all its files, to FTAG-layout HDF5",
    )
    conv.add_argument("--sample", required=True, help="a sample name from the sample list")
    conv.add_argument("--part", type=int, help="the part (convert.files_per_job files) to convert")
    conv.add_argument("--output", help="output .h5 (with --part: default the part's file)")
    conv.add_argument("--summary", help="output JSON without --part: per-file counts, skipped")
    conv.add_argument("--status", help="output JSON with --part (default the part's status)")
    conv.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show a rich progress bar (a final line only, when stderr is not a terminal)",
    )
    gat = verb(
        "gather",
        cmd_gather,
        "a sample's converted parts as one HDF5 file (virtual datasets) and its summary",
    )
    gat.add_argument("--sample", required=True, help="a sample name from the sample list")
    gat.add_argument("--output", help="output .h5 (default results/h5/SAMPLE.h5)")
    gat.add_argument("--summary", help="output JSON (default results/h5/SAMPLE.summary.json)")
    lst = verb("list-files", cmd_list_files, "list a sample's remote globs once, into a file")
    lst.add_argument("--sample", required=True, help="a sample name from the sample list")
    lst.add_argument("--output", help="output JSON (default results/h5/SAMPLE/files.json)")
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
    nrm.add_argument("--classes", help="output classes.yaml (ftag Flavours format)")
    trn = verb("train", cmd_train, "train one model config; resumes a killed run")
    trn.add_argument("--train", required=True)
    trn.add_argument("--val", required=True)
    trn.add_argument("--norm", required=True)
    trn.add_argument("--class-dict", required=True)
    trn.add_argument("--outdir", required=True, help="results/models/<model>")
    trn.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    trn.add_argument("--control-train", help="control-region train split (adversarial models)")
    trn.add_argument("--control-val", help="control-region val split (adversarial models)")
    tri = verb("tune", cmd_tune, "one trial of a hyperparameter study (a train job)")
    tri.add_argument("--job", type=int, required=True, help="the trial job's index")
    for flag in ("--train", "--val", "--norm", "--class-dict"):
        tri.add_argument(flag, required=True)
    tri.add_argument("--control-train", help="control-region train split (adversarial models)")
    tri.add_argument("--control-val", help="control-region val split (adversarial models)")
    tri.add_argument("--outdir", required=True, help="the trial's training directory")
    tri.add_argument("--output", required=True, help="the trial's record, trials/<job>.json")
    tri.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    bst = verb("study", cmd_study, "a study's best trial as a model config, its table and plots")
    bst.add_argument("--trials", nargs="+", required=True, help="the trial records")
    bst.add_argument("--output", required=True, help="results/tune/<study>/best.yaml")
    bst.add_argument("--summary", required=True, help="the study's trials table (JSON)")
    bst.add_argument("--history", required=True, help="optimisation history plot (PNG)")
    bst.add_argument("--importances", required=True, help="parameter importances plot (PNG)")
    trk = verb("track", cmd_track, "MLflow runs of the trained models (tracking.mlflow)")
    trk.add_argument("--models", nargs="+", required=True, help="results/models/<model> dirs")
    trk.add_argument("--artifacts", nargs="*", default=[], help="plots, ONNX files to attach")
    trk.add_argument("--output", required=True, help="the run ids (JSON)")
    cmp = verb(
        "compare",
        cmd_compare,
        "best epochs of models or trials by val loss, K-S sum, AUC",
        config=False,
    )
    cmp.add_argument("--names", nargs="+", required=True, help="one name per metrics file")
    cmp.add_argument("--metrics", nargs="+", required=True, help="training metrics.json files")
    cmp.add_argument("--output", required=True, help="the table (JSON)")
    cmp.add_argument("--plot", required=True, help="per-epoch curves (PNG)")
    prd = verb("predict", cmd_predict, "class probabilities for the test split (puma layout)")
    prd.add_argument("--model", required=True, help="model name: column prefix")
    prd.add_argument("--checkpoint", required=True)
    prd.add_argument("--test", required=True)
    prd.add_argument("--control", help="control-region test split")
    prd.add_argument("--output", required=True)

    evl = verb("evaluate", cmd_evaluate, "ROC, AUC, rejection (and Bayes-optimal AUC) → JSON")
    evl.add_argument("--model", required=True)
    evl.add_argument("--predictions", required=True)
    evl.add_argument("--training", required=True, help="the model's training metrics.json")
    evl.add_argument("--output", required=True, help="results/metrics/<model>.json")
    evl.add_argument("--plots", required=True, help="plot directory, results/plots/<model>")
    exp = verb("export", cmd_export, "ONNX and int8 export, validated and benchmarked on CPU")
    exp.add_argument("--model", required=True, help="model name: output prefix")
    exp.add_argument("--checkpoint", required=True)
    exp.add_argument("--test", required=True, help="test split: validation, AUCs, timing")
    exp.add_argument("--val", required=True, help="validation split: static calibration")
    exp.add_argument("--outdir", required=True, help="results/export/<model>")
    exp.add_argument("--threads", type=int, default=1, help="CPU threads for the timing")
    exp.add_argument("--repo", default=".", help="workflow checkout whose git commit is embedded")
    rep = verb("report", cmd_report, "results/report.md and the model comparison plot")
    rep.add_argument("--models", nargs="+", required=True)
    rep.add_argument("--predictions", nargs="+", required=True, help="one per model, in order")
    rep.add_argument("--metrics", nargs="+", required=True, help="one per model, in order")
    rep.add_argument("--exports", nargs="*", default=[], help="export benchmark.json files")
    rep.add_argument("--epochs", help="the best-epochs table of hepsnake compare")
    rep.add_argument("--studies", nargs="*", default=[], help="tuning studies' study.json")
    rep.add_argument("--split-summary", required=True)
    rep.add_argument("--convert-summaries", nargs="+", required=True)
    rep.add_argument("--output", required=True)
    rep.add_argument("--repo", default=".", help="workflow checkout whose git commit is reported")
    ini = verb(
        "init",
        cmd_init,
        "inspect real ROOT files and write a starter DIR/config.yaml and DIR/samples.tsv",
        config=False,
    )
    ini.add_argument(
        "--from",
        dest="source",
        required=True,
        nargs="+",
        metavar="[CLASS=]FILE.root",
        help="one sample per file; CLASS= makes the file's jets that class",
    )
    ini.add_argument("--reader", choices=["physlite", "flat"], help="default: detected")
    ini.add_argument("--tree", help="the tree or RNTuple to read (default: the one with jets)")
    ini.add_argument("--label", metavar="BRANCH", help="the truth-label branch (default: found)")
    ini.add_argument("--out", required=True, metavar="DIR")
    ini.add_argument("--force", action="store_true", help="replace an existing config there")
    ins = verb(
        "install-profile",
        cmd_install_profile,
        "copy profiles/NAME where `snakemake --profile NAME` finds it (~/.config/snakemake)",
        config=False,
    )
    ins.add_argument("name", choices=["htcondor", "slurm"])
    ins.add_argument("--source", default="profiles", help="the workflow's profiles directory")
    ins.add_argument("--dest", help="install here instead of Snakemake's user profile dir")
    ins.add_argument("--force", action="store_true", help="replace a different installed copy")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hepsnake`` console script."""
    args = parser().parse_args(argv)
    # third-party loggers (botocore, fsspec) stay at WARNING: their INFO lines are noise
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # lightning prints through its own "INFO: ..." handler: not through ours a second time
    logging.getLogger("lightning").propagate = False
    log.setLevel(os.environ.get("HEPSNAKE_LOG", "INFO"))
    quiet_write_errors()
    try:
        args.func(args)
    except (HepsnakeError, OSError) as exc:
        error = os_error(exc) if isinstance(exc, OSError) else exc
        print(f"hepsnake {args.verb}: error: {error}", file=sys.stderr)
        if isinstance(error, WriteError):  # HDF5 crashes at exit after a failed write
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except Exception as exc:  # a bug, or input no check foresaw: still one line, no traceback
        if os.environ.get("HEPSNAKE_DEBUG"):
            raise
        print(
            f"hepsnake {args.verb}: error: unexpected {first_line(exc)}"
            " (HEPSNAKE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
