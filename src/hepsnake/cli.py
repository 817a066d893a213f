"""``hepsnake <verb>``: parse arguments, call the stage function, turn failures into one line."""

import argparse
import logging
import os
import sys
from pathlib import Path

# torch's OpenMP threads busy-wait between small ops; on a 2-core machine that costs 10x
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hepsnake import __version__, paths
from hepsnake.errors import HepsnakeError, first_line
from hepsnake.io.atomic import WriteError, os_error, quiet_write_errors

log = logging.getLogger("hepsnake")

if TYPE_CHECKING:
    from hepsnake.config import Resolved


class Run:
    """The ``--config`` of one command, read when first needed, and the stage contracts cut
    from it (``--model``/``--sample``/``--study`` name which)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.resolved: Resolved | None = None

    def contract(self, stage: str, **names: str) -> Any:
        from hepsnake.config import contract, read_config

        if self.resolved is None:
            self.resolved = read_config(self.args.config)
        return contract(self.resolved, stage, **names)


def given(value: Any, default: Callable[[], Any]) -> Any:
    """``value`` if the command line gave it, else ``default()`` (the standard layout)."""
    return default() if value is None else value


def cmd_simulate(args: argparse.Namespace) -> None:
    from hepsnake.simulate.toy import simulate_sample

    c = Run(args).contract("simulate", sample=args.sample)
    output = given(args.output, lambda: paths.fill(paths.TOY, toy=args.sample))
    n = simulate_sample(c, output)
    log.info("simulate %s: %d jets → %s", args.sample, n, output)


def cmd_convert(args: argparse.Namespace) -> None:
    c = Run(args).contract("convert", sample=args.sample)
    if args.part is None:
        from hepsnake.convert.convert import convert

        output = given(args.output, lambda: paths.fill(paths.CONVERTED, sample=args.sample))
        summary = given(args.summary, lambda: paths.fill(paths.CONVERT_SUMMARY, sample=args.sample))
        report = convert(c, output, summary, show_progress=args.progress)
    else:
        from hepsnake.convert.part import convert_part

        output = given(args.output, lambda: paths.part_file(args.sample, args.part))
        report = convert_part(c, args.part, output, show_progress=args.progress)
    for skipped in report["skipped"]:
        log.warning("skipped %s", skipped["reason"])
    log.info("convert %s: %d jets → %s", args.sample, report["jets"], output)


def cmd_gather(args: argparse.Namespace) -> None:
    from hepsnake.convert.gather import gather

    c = Run(args).contract("convert", sample=args.sample)
    output = given(args.output, lambda: paths.fill(paths.CONVERTED, sample=args.sample))
    summary = given(args.summary, lambda: paths.fill(paths.CONVERT_SUMMARY, sample=args.sample))
    report = gather(c, output, summary)
    log.info(
        "gather %s: %d jets from %d parts (%d failed) → %s",
        args.sample,
        report["jets"],
        report["parts"],
        len(report["failed_parts"]),
        output,
    )


def cmd_list_files(args: argparse.Namespace) -> None:
    from hepsnake.convert.file_list import write_file_list

    c = Run(args).contract("convert", sample=args.sample)
    output = given(args.output, lambda: paths.file_list(args.sample))
    files = write_file_list(c, output)
    log.info("list-files %s: %d files → %s", args.sample, len(files), output)


def cmd_split(args: argparse.Namespace) -> None:
    from hepsnake.prepare.split import split

    c = Run(args).contract("split")
    roles = ("control",) if args.control else ("train", "test")
    inputs = given(
        args.inputs, lambda: [paths.fill(paths.CONVERTED, sample=s) for s in c.names(*roles)]
    )
    standard = args.outputs is None  # the whole standard layout (debug subsets, plot too)
    template = paths.CONTROL_SPLIT if args.control else paths.SPLIT
    outputs = dict(zip(paths.SPLITS, given(args.outputs, lambda: splits(template)), strict=True))
    debug = args.debug or (splits(paths.DEBUG_SPLIT) if standard and not args.control else None)
    summary = given(
        args.summary,
        lambda: paths.CONTROL_SUMMARY if args.control else paths.SPLIT_SUMMARY,
    )
    plot = args.plot or (paths.REWEIGHTING_PLOT if standard and not args.control else None)
    debug_paths = dict(zip(paths.SPLITS, debug, strict=True)) if debug else None
    report = split(c, inputs, outputs, summary, debug_paths, args.control, plot)
    counts = {s: sum(r["jets"] for r in report["rows"] if r["split"] == s) for s in outputs}
    log.info("split (%s): %s", report["kind"], counts)


def splits(template: str) -> list[str]:
    """``template`` filled for train, val and test."""
    return [paths.fill(template, split=s) for s in paths.SPLITS]


def cmd_norm(args: argparse.Namespace) -> None:
    from hepsnake.prepare.norm import norm_stats

    c = Run(args).contract("norm")
    standard = args.norm is None
    train = given(args.train, lambda: paths.fill(paths.SPLIT, split="train"))
    norm_out = given(args.norm, lambda: paths.NORM)
    class_dict = given(args.class_dict, lambda: paths.CLASS_DICT)
    classes = args.classes or (paths.CLASSES if standard else None)
    norm = norm_stats(c, train, norm_out, class_dict, classes_out=classes)
    log.info("norm: %d variables → %s", sum(len(v) for v in norm.values()), norm_out)


def training_paths(args: argparse.Namespace, control: bool) -> dict[str, str]:
    """The prepared inputs of a training job: the flags given, else the standard layout."""
    found = {
        "train": given(args.train, lambda: paths.fill(paths.SPLIT, split="train")),
        "val": given(args.val, lambda: paths.fill(paths.SPLIT, split="val")),
        "norm": given(args.norm, lambda: paths.NORM),
        "class_dict": given(args.class_dict, lambda: paths.CLASS_DICT),
    }
    if args.control_train or control:
        found["control_train"] = given(
            args.control_train, lambda: paths.fill(paths.CONTROL_SPLIT, split="train")
        )
        found["control_val"] = given(
            args.control_val, lambda: paths.fill(paths.CONTROL_SPLIT, split="val")
        )
    return found


def cmd_train(args: argparse.Namespace) -> None:
    from hepsnake.training.run import train

    c = Run(args).contract("train", model=args.model)
    found = training_paths(args, c.control)
    control = {s: found[f"control_{s}"] for s in ("train", "val") if f"control_{s}" in found}
    outdir = given(args.outdir, lambda: paths.fill(paths.MODEL_DIR, model=args.model))
    summary = train(
        c,
        found["train"],
        found["val"],
        found["norm"],
        found["class_dict"],
        outdir,
        args.threads,
        control or None,
    )
    if summary:
        log.info("train: best epoch %s %s", summary["best_epoch"], summary["best"])


def cmd_tune(args: argparse.Namespace) -> None:
    from hepsnake.tune.study import run_trial

    c = Run(args).contract("tune", study=args.study)
    found = training_paths(args, c.study.model.adversarial is not None)
    names = {"study": args.study, "trial": args.job}
    outdir = given(args.outdir, lambda: paths.fill(paths.TRIAL_DIR, **names))
    output = given(args.output, lambda: paths.fill(paths.TRIAL, **names))
    record = run_trial(c, args.job, found, outdir, output, args.threads)
    log.info(
        "tune trial %d (job %d): %s %s",
        record["number"],
        args.job,
        record["state"],
        record["value"],
    )


def cmd_study(args: argparse.Namespace) -> None:
    from hepsnake.tune.best import tune_best

    c = Run(args).contract("study", study=args.study)

    def study_path(template: str) -> str:
        return paths.fill(template, study=args.study)

    trials = given(
        args.trials,
        lambda: [paths.fill(paths.TRIAL, study=args.study, trial=i) for i in range(c.n_trials)],
    )
    output = given(args.output, lambda: study_path(paths.BEST_MODEL))
    summary = tune_best(
        c,
        trials,
        output,
        given(args.summary, lambda: study_path(paths.STUDY_SUMMARY)),
        given(args.history, lambda: study_path(paths.STUDY_HISTORY)),
        given(args.importances, lambda: study_path(paths.STUDY_IMPORTANCES)),
    )
    log.info(
        "tune %s: best trial %d, %s %.6g → %s",
        summary["name"],
        summary["best_trial"],
        summary["metric"],
        summary["best"],
        output,
    )


def cmd_track(args: argparse.Namespace) -> None:
    from hepsnake.tracking import track_models

    c = Run(args).contract("track")
    models = given(args.models, lambda: [paths.fill(paths.MODEL_DIR, model=m) for m in c.models])
    artifacts = given(args.artifacts, lambda: tracked_artifacts(c))
    output = given(args.output, lambda: paths.RUNS)
    runs = track_models(c, models, artifacts, output)
    log.info("track: %d MLflow runs → %s", len(runs), output)


def tracked_artifacts(c: Any) -> list[str]:
    """What rule track attaches: the exported ONNX files, every evaluation plot, every
    export benchmark plot."""
    files = [paths.fill(paths.ONNX, model=m) for m in c.exported]
    files += [paths.fill(paths.PLOT, model=m, name=p) for m in c.models for p in c.plots]
    return files + [paths.fill(paths.EXPORT_PLOT, model=m) for m in c.exported]


def cmd_compare(args: argparse.Namespace) -> None:
    from hepsnake.report.compare import compare

    run = Run(args)
    names = given(args.names, lambda: list(run.contract("compare").models))
    metrics = given(
        args.metrics, lambda: [paths.fill(paths.TRAINING_METRICS, model=m) for m in names]
    )
    output = given(args.output, lambda: paths.EPOCHS)
    plot = given(args.plot, lambda: paths.EPOCHS_PLOT)
    table = compare(dict(zip(names, metrics, strict=True)), output, plot)
    for row in table["rows"]:
        log.info("%s: %s", row["name"], row["best"])


def cmd_predict(args: argparse.Namespace) -> None:
    from hepsnake.evaluate.predict import predict

    run = Run(args)
    model = args.model
    checkpoint = given(args.checkpoint, lambda: paths.fill(paths.CHECKPOINT, model=model))
    test = given(args.test, lambda: paths.fill(paths.SPLIT, split="test"))
    output = given(args.output, lambda: paths.fill(paths.PREDICTIONS, model=model))
    control = args.control
    standard = args.test is None  # the standard test split: the config's control region too
    if standard and control is None and run.contract("predict", model=model).control:
        control = paths.fill(paths.CONTROL_SPLIT, split="test")
    counts = predict(model, checkpoint, test, output, control)
    log.info("predict %s: %s → %s", model, counts, output)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from hepsnake.evaluate.stage import evaluate

    c = Run(args).contract("evaluate", model=args.model)
    model = args.model
    metrics = evaluate(
        c,
        given(args.predictions, lambda: paths.fill(paths.PREDICTIONS, model=model)),
        given(args.training, lambda: paths.fill(paths.TRAINING_METRICS, model=model)),
        given(args.output, lambda: paths.fill(paths.METRICS, model=model)),
        given(args.plots, lambda: paths.fill(paths.PLOT_DIR, model=model)),
    )
    signal = c.evaluate.signal
    for name, entry in metrics["backgrounds"].items():
        bayes = f" (Bayes-optimal {entry['bayes_auc']:.4f})" if "bayes_auc" in entry else ""
        log.info("%s: AUC %s vs %s = %.4f%s", args.model, signal, name, entry["auc"], bayes)


def cmd_export(args: argparse.Namespace) -> None:
    from hepsnake.export.stage import export
    from hepsnake.provenance import git_commit

    c = Run(args).contract("export", model=args.model)
    model = args.model
    result = export(
        given(args.checkpoint, lambda: paths.fill(paths.CHECKPOINT, model=model)),
        model,
        given(args.test, lambda: paths.fill(paths.SPLIT, split="test")),
        given(args.val, lambda: paths.fill(paths.SPLIT, split="val")),
        given(args.outdir, lambda: paths.fill(paths.EXPORT_DIR, model=model)),
        git_commit=git_commit(Path(args.repo)),
        threads=args.threads,
        signal=c.signal,
        quantise=c.quantise,
        opset=c.opset,
        n_validate=c.n_validate,
        n_latency=c.n_latency,
        athena=c.athena,
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

    c = Run(args).contract("report")
    models = given(args.models, lambda: list(c.models))

    def per_model(value: list[str] | None, template: str) -> list[str]:
        return given(value, lambda: [paths.fill(template, model=m) for m in models])

    output = given(args.output, lambda: paths.REPORT)
    report(
        c,
        dict(zip(models, per_model(args.metrics, paths.METRICS), strict=True)),
        dict(zip(models, per_model(args.training, paths.TRAINING_METRICS), strict=True)),
        given(args.split_summary, lambda: paths.SPLIT_SUMMARY),
        given(
            args.convert_summaries,
            lambda: [paths.fill(paths.CONVERT_SUMMARY, sample=s) for s in c.samples],
        ),
        output,
        args.repo,
        given(
            args.exports,
            lambda: [paths.fill(paths.EXPORT_BENCHMARK, model=m) for m in c.exported],
        ),
        given(args.epochs, lambda: paths.EPOCHS),
        given(
            args.studies,
            lambda: [paths.fill(paths.STUDY_SUMMARY, study=s) for s in c.studies],
        ),
    )
    log.info("report → %s", output)


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
        "Each verb reads the config (--config: a YAML file, or the resolved file Snakemake "
        "writes, results/config/resolved.yaml) and writes the standard results/ layout unless "
        "paths are given. Each verb prints one error line and exits 1 on bad input.",
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
                help="config YAML file, or the resolved config Snakemake writes",
            )
        sub.set_defaults(func=func)
        return sub

    def model_flag(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model", required=True, help="a model of the config's models")

    sim = verb("simulate", cmd_simulate, "write one toy LLP sample as a ROOT TTree")
    sim.add_argument("--sample", required=True, help="a key of simulate.samples")
    sim.add_argument("--output", help="default results/toy/<sample>.root")

    conv = verb(
        "convert",
        cmd_convert,
        "convert one part of a sample (--part), or all its files, to FTAG-layout HDF5",
    )
    conv.add_argument("--sample", required=True, help="a sample name from the sample list")
    conv.add_argument("--part", type=int, help="the part (convert.files_per_job files) to convert")
    conv.add_argument(
        "--output",
        help="output .h5 (default results/h5/<sample>.h5, with --part the part's file)",
    )
    conv.add_argument("--summary", help="output JSON without --part: per-file counts, skipped")
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
    gat.add_argument("--output", help="output .h5 (default results/h5/<sample>.h5)")
    gat.add_argument("--summary", help="output JSON (default results/h5/<sample>.summary.json)")
    lst = verb("list-files", cmd_list_files, "list a sample's remote globs once, into a file")
    lst.add_argument("--sample", required=True, help="a sample name from the sample list")
    lst.add_argument("--output", help="output JSON (default results/h5/<sample>/files.json)")
    spl = verb("split", cmd_split, "event-level train/val/test splits with weights")
    spl.add_argument(
        "--inputs", nargs="+", help="converted sample .h5 files (default: the config's)"
    )
    spl.add_argument("--outputs", nargs=3, metavar=("TRAIN", "VAL", "TEST"))
    spl.add_argument("--debug", nargs=3, metavar=("TRAIN", "VAL", "TEST"), help="debug subsets")
    spl.add_argument("--summary", help="output JSON: jets per split/sample/class")
    spl.add_argument("--control", action="store_true", help="control-region (data/MC) samples")
    spl.add_argument("--plot", help="reweighting check plot (PNG)")

    nrm = verb("norm", cmd_norm, "normalisation stats and class weights from the train split")
    nrm.add_argument("--train")
    nrm.add_argument("--norm", help="output norm_dict.yaml")
    nrm.add_argument("--class-dict", help="output class_dict.yaml")
    nrm.add_argument("--classes", help="output classes.yaml (ftag Flavours format)")

    def training_flags(sub: argparse.ArgumentParser) -> None:
        for flag in ("--train", "--val", "--norm", "--class-dict"):
            sub.add_argument(flag)
        sub.add_argument("--control-train", help="control-region train split (adversarial)")
        sub.add_argument("--control-val", help="control-region val split (adversarial)")
        sub.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    trn = verb("train", cmd_train, "train one model config; resumes a killed run")
    model_flag(trn)
    training_flags(trn)
    trn.add_argument("--outdir", help="default results/models/<model>")
    tri = verb("tune", cmd_tune, "one trial of a hyperparameter study (a train job)")
    tri.add_argument("--study", required=True, help="a study of the config's tune")
    tri.add_argument("--job", type=int, required=True, help="the trial job's index")
    training_flags(tri)
    tri.add_argument("--outdir", help="the trial's training directory")
    tri.add_argument("--output", help="the trial's record, trials/<job>.json")
    bst = verb("study", cmd_study, "a study's best trial as a model config, its table and plots")
    bst.add_argument("--study", required=True, help="a study of the config's tune")
    bst.add_argument("--trials", nargs="+", help="the trial records")
    bst.add_argument("--output", help="results/tune/<study>/best.yaml")
    bst.add_argument("--summary", help="the study's trials table (JSON)")
    bst.add_argument("--history", help="optimisation history plot (PNG)")
    bst.add_argument("--importances", help="parameter importances plot (PNG)")
    trk = verb("track", cmd_track, "MLflow runs of the trained models (tracking.mlflow)")
    trk.add_argument("--models", nargs="+", help="results/models/<model> dirs")
    trk.add_argument("--artifacts", nargs="*", help="plots, ONNX files to attach")
    trk.add_argument("--output", help="the run ids (JSON)")
    cmp = verb("compare", cmd_compare, "best epochs of models or trials by val loss, K-S sum, AUC")
    cmp.add_argument("--names", nargs="+", help="one name per metrics file")
    cmp.add_argument("--metrics", nargs="+", help="training metrics.json files")
    cmp.add_argument("--output", help="the table (JSON)")
    cmp.add_argument("--plot", help="per-epoch curves (PNG)")
    prd = verb("predict", cmd_predict, "class probabilities for the test split (puma layout)")
    prd.add_argument("--model", required=True, help="model name: column prefix")
    prd.add_argument("--checkpoint")
    prd.add_argument("--test")
    prd.add_argument(
        "--control", help="control-region test split (default without --test: the config's)"
    )
    prd.add_argument("--output")

    evl = verb("evaluate", cmd_evaluate, "ROC, AUC, rejection (and Bayes-optimal AUC) → JSON")
    model_flag(evl)
    evl.add_argument("--predictions")
    evl.add_argument("--training", help="the model's training metrics.json")
    evl.add_argument("--output", help="results/metrics/<model>.json")
    evl.add_argument("--plots", help="plot directory, results/plots/<model>")
    exp = verb("export", cmd_export, "ONNX and int8 export, validated and benchmarked on CPU")
    model_flag(exp)
    exp.add_argument("--checkpoint")
    exp.add_argument("--test", help="test split: validation, AUCs, timing")
    exp.add_argument("--val", help="validation split: static calibration")
    exp.add_argument("--outdir", help="results/export/<model>")
    exp.add_argument("--threads", type=int, default=1, help="CPU threads for the timing")
    exp.add_argument("--repo", default=".", help="workflow checkout whose git commit is embedded")
    rep = verb("report", cmd_report, "results/report.md and the model comparison plot")
    rep.add_argument("--models", nargs="+")
    rep.add_argument("--metrics", nargs="+", help="one per model, in order")
    rep.add_argument("--training", nargs="+", help="each model's training metrics.json, in order")
    rep.add_argument("--exports", nargs="*", help="export benchmark.json files")
    rep.add_argument("--epochs", help="the best-epochs table of hepsnake compare")
    rep.add_argument("--studies", nargs="*", help="tuning studies' study.json")
    rep.add_argument("--split-summary")
    rep.add_argument("--convert-summaries", nargs="+")
    rep.add_argument("--output")
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
