"""The ``report`` stage: ``results/report.md`` from the metrics, summaries and plots, plus the
model-comparison ROC (numbers and curves are copied from ``results/metrics/*.json``, never
recomputed), with the warnings a reviewer would raise (:mod:`hepsnake.report.warnings`)."""

import itertools
import json
from pathlib import Path
from typing import Any

from hepsnake.config.contracts import ReportContract
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import BAYES, INCLUSIVE, loaded_counts, loaded_curves, trained_values
from hepsnake.io.atomic import atomic_path
from hepsnake.io.figure import use_style
from hepsnake.io.files import TRAINING_METRICS_KIND, read_json
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.paths import (
    COMPARE_ROC,
    EPOCHS_PLOT,
    EXPORT_FILES,
    PLOT_DIR,
    RESULTS,
    REWEIGHTING_PLOT,
    fill,
    page_file,
    plot_file,
)
from hepsnake.provenance import git_commit, package_versions
from hepsnake.report import warnings as review
from hepsnake.report.compare import compare_section
from hepsnake.report.page import render
from hepsnake.report.summary import summary_lines
from hepsnake.report.tables import fmt, table
from hepsnake.report.warnings import ROC_NAMES, roc_entries

# what each file the report reads is called in errors, and the keys it must hold
EVALUATE_METRICS = ("evaluate metrics", ("inclusive", "backgrounds", "training", "roc_curves"))
TRAINING = (TRAINING_METRICS_KIND, ("epochs", "best_epoch"))
CONVERT_SUMMARY = ("conversion summary", ("sample", "files"))
SPLIT_SUMMARY = ("split summary", ("rows",))
BENCHMARK = ("export benchmark.json", ("model", "backends"))
VALIDATION = ("export validation.json", ())
STUDY = ("tuning study.json", ("name", "trials", "best_params", "plots"))


def compare_roc(metrics: dict[str, dict[str, Any]], contract: ReportContract, output: Path) -> None:
    """Every model's and reference tagger's rejection curves (inclusive, per background) with
    their statistical bands, as evaluate stored them in each model's metrics (the reference
    taggers' from the first), on one figure, with the ratio panel to
    ``evaluate.ratio_reference`` (default: the first model). The Bayes-optimal curve most
    models share (the toy truth on the same test jets) is drawn once, black; a model whose
    own differs (a parameterised model's knows each jet's parameters, as the model did) gets
    it dashed in its colour."""
    ev = contract.evaluate
    references = list(ev.reference_taggers)
    first = next(iter(metrics.values()))["roc_curves"]
    stored = {m: met["roc_curves"] for m, met in metrics.items()}
    truths: dict[str, list[str]] = {}  # a Bayes-optimal curve (as JSON) -> the models sharing it
    for model, curves in stored.items():
        if BAYES in curves["rejection"]:
            truths.setdefault(json.dumps(curves["rejection"][BAYES]), []).append(model)
    shared = max(truths.values(), key=len, default=[])
    plot, counts = {}, {}
    for model, curves in stored.items():
        plot |= loaded_curves(curves, [model])
        counts |= loaded_counts(curves, [model])
        if BAYES in curves["rejection"] and model not in shared:
            label = f"{BAYES} ({model})"
            plot[label] = loaded_curves(curves, [BAYES])[BAYES]
            counts[label] = loaded_counts(curves, [BAYES])[BAYES]
    plot |= loaded_curves(first, references)
    counts |= loaded_counts(first, references)
    if shared:  # drawn last, over the models
        plot |= loaded_curves(stored[shared[0]], [BAYES])
        counts |= loaded_counts(stored[shared[0]], [BAYES])
    wording = ev.signal_name
    reference = ev.ratio_reference or next(iter(metrics))
    plots.plot_roc(plot, output, f"signal: {wording}", wording, reference, counts)


def export_section(exports: dict[str, tuple[str, dict, dict]], results: Path) -> list[str]:
    """The export table: latency, throughput, AUC and the largest output differences per
    backend of each model (``exports``: model → (benchmark.json path, its content, the
    validation.json content)). The export's own speed targets belong to the benchmarks
    (benchmarks/README.md), not to this report."""
    rows, images = [], []
    for model, (path, bench, valid) in exports.items():
        for backend, entry in bench["backends"].items():
            diff = {
                "onnx_fp32": valid.get("fp32", {}).get("max_abs_diff_vs_pytorch", "-"),
                "onnx_int8": valid.get("int8", {}).get("max_abs_diff_vs_fp32", "-"),
            }.get(backend, "-")
            rows.append(
                [
                    model,
                    backend,
                    entry["latency_ms_median"],
                    round(entry["throughput_jets_per_s"]),
                    entry["auc"],
                    diff,
                ]
            )
        image = Path(path).with_name(EXPORT_FILES["plot"])
        if image.exists():
            link = image.resolve().relative_to(results.resolve())
            images.append(f"![{model} export benchmark]({link})")
    lines = ["## Export (ONNX Runtime, CPU)", ""]
    lines += [
        "Timed in one thread, as that thread's CPU time (other jobs on the same cores do not"
        " inflate it); wall-clock figures are in `export/<model>/benchmark.json`. The AUC here"
        " is the signal class (all of it) against all other classes, unweighted, on the timed"
        " test jets:"
        " it compares the backends, not the models (see the model sections for that).",
        "",
    ]
    lines += table(
        [
            "model",
            "backend",
            "latency batch 1 (ms)",
            "throughput batch 1000 (jets/s)",
            "AUC (signal vs rest)",
            "max abs. diff (fp32 vs PyTorch, int8 vs fp32)",
        ],
        rows,
    )
    return [*lines, *images, ""]


MODEL_PLOTS = (
    "roc",
    "roc_param",
    "outputs",
    "outputs_pt",
    "efficiency_pt",
    "training",
    "sb_scan",
    "control",
    "param_efficiency",
)


def comparison_section(
    metrics: dict[str, dict[str, Any]],
    signal: str,
    signal_class: str,
    plot: Path,
    references: list[str],
) -> list[str]:
    """Best epoch, AUCs (model, and Bayes-optimal where the toy truth exists) and the data/MC
    K-S (with a control region) of every model, then the AUCs of each reference tagger (on
    the first model's test jets) and the rejections of models and reference taggers at each
    working point."""
    first = next(iter(metrics.values()))
    names = list(roc_entries(first))
    bayes = any("bayes_auc" in e for met in metrics.values() for e in roc_entries(met).values())
    control = any("control_ks" in met for met in metrics.values())
    header = ["model", "best epoch"]
    for name in names:
        header += [f"AUC {signal} vs {ROC_NAMES.get(name, name)}"] + ["Bayes AUC"] * bayes
    header += [f"data/MC K-S (p_{signal_class})"] * control
    rows = []
    for m, met in metrics.items():
        row: list[Any] = [m, met["training"]["best_epoch"]]
        for entry in roc_entries(met).values():
            row += [entry["auc"]] + [entry.get("bayes_auc", "-")] * bayes
        row += [met.get("control_ks", {}).get(signal_class, {}).get("ks", "-")] * control
        rows.append(row)
    for ref in references:
        row = [f"{ref} (reference)", "-"]
        for entry in roc_entries(first["reference_taggers"][ref]).values():
            row += [entry["auc"]] + ["-"] * bayes
        rows.append(row + ["-"] * control)
    lines = ["## Model comparison", "", *table(header, rows)]
    if references:
        taggers = dict(metrics)
        taggers |= {f"{r} (reference)": first["reference_taggers"][r] for r in references}
        wps = list(first[INCLUSIVE]["rejection"])
        rej_rows = []
        for name in names:
            for tagger, met in taggers.items():
                rej = roc_entries(met)[name]["rejection"]
                rej_rows.append(
                    [tagger, ROC_NAMES.get(name, name), *(rej[w]["rejection"] for w in wps)]
                )
        lines += [f"Background rejection at each {signal} efficiency:", ""]
        lines += table(["tagger", "background", *(f"ε = {w}" for w in wps)], rej_rows)
    return [*lines, f"![comparison ROC]({plot})", ""]


def parameter_lines(met: dict[str, Any], signal: str) -> list[str]:
    """The per-parameter-value AUC tables and efficiencies of a model's metrics."""
    lines: list[str] = []
    for par, per_value in met.get("parameters", {}).items():
        rows = []
        for value, entry in sorted(per_value.items(), key=lambda kv: float(kv[0])):
            unseen = "yes" if entry["unseen"] else "no"
            for name in roc_entries(met):
                if name in entry:
                    per = entry[name]
                    label = ROC_NAMES.get(name, name)
                    rows.append([value, unseen, label, per["auc"], per.get("bayes_auc", "-")])
        lines += [f"Signal ({signal}) per value of `{par}` (unseen: not a training value):", ""]
        lines += table([par, "unseen", "background", "AUC", "Bayes AUC"], rows)
    if "parameter_efficiency" in met:
        eff = met["parameter_efficiency"]
        for par, per_value in eff["efficiency"].items():
            lines += [
                f"{signal} efficiency per value of `{par}` at the background efficiency"
                f" {fmt(eff['background_efficiency'])} of the {eff['working_point']:g} working"
                " point (all backgrounds):",
                "",
            ]
            rows = sorted(map(list, per_value.items()), key=lambda row: float(row[0]))
            lines += table([par, f"{signal} efficiency"], rows)
    return lines


def linked(path: str) -> Path:
    """A results path as report.md (in the results folder) links it."""
    return Path(path).relative_to(RESULTS)


def model_plots(model: str) -> Path:
    """The plot folder of ``model``, as report.md links it."""
    return linked(fill(PLOT_DIR, model=model))


def task_lines(m: str, tasks: dict[str, dict[str, Any]]) -> list[str]:
    """A table of each task's scalar headline figures and its plots (a model with only the
    jet classification, whose figures are above, gets none)."""
    if len(tasks) < 2:
        return []
    rows = [
        [task, key, value]
        for task, figures in tasks.items()
        for key, value in figures.items()
        if isinstance(value, int | float | str) and not isinstance(value, bool)
    ]
    drawn = [p for figures in tasks.values() for p in figures.get("plots", [])]
    images = [f"![{m} {p}]({model_plots(m) / p})" for p in drawn]
    return ["Tasks:", "", *table(["task", "figure", "value"], rows), *images]


def model_section(m: str, met: dict[str, Any], results: Path, signal: str) -> list[str]:
    """Rejections, per-parameter AUCs and efficiencies, pt-bin AUCs, S/√B, K-S and plots of a
    model (``signal``: the signal class's wording)."""
    mix = ", ".join(f"{b} {fmt(f)}" for b, f in met["fractions"].items())
    lines = [f"## Model `{m}`", "", f"Background fractions (all backgrounds): {mix}.", ""]
    rows = [
        [ROC_NAMES.get(name, name), wp, rej["rejection"], rej["uncertainty"]]
        for name, entry in roc_entries(met).items()
        for wp, rej in entry["rejection"].items()
    ]
    lines += table(["background", f"{signal} efficiency", "rejection", "± stat."], rows)
    lines += parameter_lines(met, signal)
    if "pt_bins" in met:
        edges, aucs = met["pt_bins"]["edges"], met["pt_bins"]["inclusive_auc"]
        bins = [f"{lo:g} – {hi:g}" for lo, hi in itertools.pairwise(edges)]
        rows = [[b, a] for b, a in zip(bins, aucs, strict=True)]
        unit = met["pt_bins"].get("unit", DEFAULT_UNIT)
        header = [f"jet pt [{unit}]", f"AUC {signal} vs all backgrounds"]
        per_bin = met["pt_bins"].get("at_working_point")
        if per_bin:
            header.append(f"{signal} efficiency")
            for row, eff in zip(rows, per_bin["signal"], strict=True):
                row.append(eff["efficiency"])
            for b, values in per_bin["rejection"].items():
                header.append(f"{b} rejection")
                for row, rej in zip(rows, values, strict=True):
                    row.append(rej["rejection"])
            lines += [
                f"Per jet pt bin; efficiency and rejections at the cut of the inclusive"
                f" {per_bin['working_point']:g} working point:",
                "",
            ]
        lines += table(header, rows)
    if "sb_scan" in met:
        scan = met["sb_scan"]
        best, cut = fmt(scan["max_significance"]), fmt(scan["best_cut"])
        lines += [f"Maximum S/√B {best} at a cut of {cut}.", ""]
    else:
        note = met.get("weights", {}).get("note") or "the weights are not physical"
        lines += [f"S/√B omitted: {note}.", ""]
    if "control_ks" in met:
        lines += table(
            ["output", "data/MC K-S", "p-value"],
            [[c, v["ks"], v["p_value"]] for c, v in met["control_ks"].items()],
        )
    lines += task_lines(m, met.get("tasks", {}))
    for name in MODEL_PLOTS:
        if name == "sb_scan" and "sb_scan" not in met:
            continue
        image = plot_file(model_plots(m), name)
        if (results / image).exists():
            lines.append(f"![{m} {name}]({image})")
    return [*lines, ""]


def tune_section(summary_path: str, results: Path) -> list[str]:
    """A tuning study: its best trial, the five best trials, Optuna's history and importance
    plots (made by rule tune_best)."""
    study = read_json(summary_path, *STUDY)
    ranked = sorted(
        (t for t in study["trials"] if t["state"] == "COMPLETE"),
        key=lambda t: t["value"],
        reverse=study["direction"] == "maximize",
    )
    states = [t["state"] for t in study["trials"]]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    lines = [f"## Tuning study `{study['name']}`", ""]
    lines += [
        f"Base model `{study['base_model']}`, {study['direction']} {study['metric']}"
        f" ({study['sampler']} sampler, {study['pruner']} pruner): {len(states)} trials"
        f" ({counts}); the best, trial {study['best_trial']}, is model `tune.{study['name']}`.",
        "",
    ]
    keys = list(study["best_params"])
    rows = [[t["number"], t["value"], *(t["params"].get(k) for k in keys)] for t in ranked[:5]]
    lines += table(["trial", study["metric"], *keys], rows)
    for name, path in study["plots"].items():
        lines.append(f"![{study['name']} {name}]({Path(path).relative_to(results)})")
    return [*lines, ""]


def run_lines(contract: ReportContract, first: dict[str, Any]) -> list[str]:
    """What the run is: classes, signal, discriminant, working points, reference taggers and
    the energy unit (from the first model's metrics)."""
    ev = contract.evaluate
    refs = ", ".join(ev.reference_taggers) or "none"
    scan = next(iter(contract.parameters.values()), None)
    train = {k: list(v) for k, v in scan.train.items()} if scan else {}
    return table(
        ["item", "value"],
        [
            ["classes", ", ".join(contract.class_names)],
            ["signal", f"{ev.signal_name}{trained_values(train)}"],
            [
                "discriminant",
                f"{first['discriminant']['type']}: {first['discriminant']['formula']}",
            ],
            ["reference taggers", refs],
            ["energy unit", first.get("energy_unit", DEFAULT_UNIT)],
        ],
    )


def samples_section(
    summaries: list[dict[str, Any]], split: dict[str, Any]
) -> tuple[list[str], dict[str, dict[str, float] | None]]:
    """The samples table (jets, and the share of negative weights among their jets and in
    their Σ|w|, from the conversion summaries, else the split summary's per sample; "n/a"
    where neither has them) and those negative-weight figures per sample."""
    from_split = split.get("samples") or {}
    figures: dict[str, dict[str, float] | None] = {}
    rows = []
    for summary in summaries:
        sample = summary["sample"]
        split_figures = (from_split.get(sample) or {}).get("negative_weights")
        figures[sample] = summary.get("negative_weights") or split_figures
        shares = figures[sample] or {}
        na = "n/a"
        rows.append(
            [
                sample,
                summary.get("jets", "-"),
                f"{shares['fraction']:.2%}" if "fraction" in shares else na,
                f"{shares['abs_share']:.2%}" if "abs_share" in shares else na,
            ]
        )
    header = ["sample", "jets", "negative weights (share of jets)", "their share of Σ|w|"]
    return table(header, rows), figures


def report(
    contract: ReportContract,
    metrics_files: dict[str, str],
    training_files: dict[str, str],
    split_summary: str,
    convert_summaries: list[str],
    output: str,
    repo: str = ".",
    exports: list[str] | None = None,
    epochs: str | None = None,
    studies: list[str] | None = None,
) -> str:
    """Write the report, its self-contained HTML page (:func:`hepsnake.paths.page_file`) and
    the comparison plot; return the Markdown text.

    The contract holds ``config_hash`` (the whole config's), each model's scanned
    ``parameters`` and the ``report`` thresholds. ``metrics_files`` and
    ``training_files`` map each model name to its evaluate metrics and its training
    ``metrics.json``; ``exports`` are the export stage's ``benchmark.json`` files (each next
    to its ``validation.json``); ``epochs`` the table of ``hepsnake compare``, ``studies`` the
    ``study.json`` of tuning studies. Warnings: :mod:`hepsnake.report.warnings`.
    """
    out = Path(output)
    results = out.parent
    ev = contract.evaluate
    signal = ev.signal_name
    metrics = {m: read_json(path, *EVALUATE_METRICS) for m, path in metrics_files.items()}
    histories = {m: read_json(path, *TRAINING) for m, path in training_files.items()}
    summaries = {path: read_json(path, *CONVERT_SUMMARY) for path in convert_summaries}
    split = read_json(split_summary, *SPLIT_SUMMARY)
    exported = {}
    for path in exports or []:
        bench = read_json(path, *BENCHMARK)
        valid_path = str(Path(path).with_name(EXPORT_FILES["validation"]))
        exported[bench["model"]] = (path, bench, read_json(valid_path, *VALIDATION), valid_path)

    converted = [
        f
        for path, summary in summaries.items()
        for f in review.stage_findings(review.DATASET, summary, path)
    ]
    # the split's warnings of a code (negative weights, with the training policy) replace the
    # conversion's: it sees every main sample after its selection
    split_found = review.stage_findings(review.DATASET, split, split_summary)
    stage = [*review.without(converted, split_found), *split_found]
    samples_lines, negative = samples_section(list(summaries.values()), split)
    test_negative = max(met.get("weights", {}).get("negative", 0) for met in metrics.values())
    own = review.dataset_checks(list(summaries.values()), split, negative, test_negative, contract)
    for m, met in metrics.items():
        stage += review.stage_findings(m, histories[m], training_files[m])
        stage += review.stage_findings(m, met, metrics_files[m])
        validation = exported[m][2] if m in exported else None
        if validation is not None:
            stage += review.stage_findings(m, validation, exported[m][3])
        own += review.model_checks(m, histories[m], met, validation, contract.report, ev)
    order = [review.DATASET, *metrics]
    findings = [*stage, *review.without(own, stage)]
    findings.sort(key=lambda f: order.index(f.subject))  # stable: stages first, in run order

    compare_png = results / linked(COMPARE_ROC)
    use_style(ev.plot_style)
    compare_roc(metrics, contract, compare_png)
    digest = contract.config_hash
    provenance = run_lines(contract, next(iter(metrics.values())))
    provenance += table(
        ["item", "value"],
        [["config hash (sha256)", digest], ["git commit", git_commit(Path(repo))]],
    )
    provenance += table(["package", "version"], [[k, v] for k, v in package_versions().items()])
    inputs = [
        [summary["sample"], f["path"], f.get("xxh3_64", "-"), f.get("jets_written", "-")]
        for summary in summaries.values()
        for f in summary["files"]
    ]
    provenance += ["Input files:", "", *table(["sample", "file", "xxh3-64", "jets"], inputs)]

    # the headline first (the warnings' one line, the summary, the model comparison), then
    # each model, export, epochs, tuning, the dataset, every warning, the provenance folded
    lines = ["# hepsnake report", "", review.headline(findings), ""]
    lines += summary_lines(metrics, signal, contract.report.best_by, len(findings))
    references = list(ev.reference_taggers)
    lines += comparison_section(
        metrics, signal, str(ev.signal), compare_png.relative_to(results), references
    )
    for m, met in metrics.items():
        lines += model_section(m, met, results, signal)

    if exported:
        lines += export_section({m: e[:3] for m, e in exported.items()}, results)
    if epochs:
        lines += compare_section(epochs, str(linked(EPOCHS_PLOT)))
    for study in studies or []:
        lines += tune_section(study, results)

    lines += ["## Dataset", "", *samples_lines]
    lines += table(
        ["split", "sample", "class", "jets", "Σ weight", "Σ train weight"],
        [
            [r["split"], r["sample"], r["class"], r["jets"], r["sum_weight"], r["sum_train_weight"]]
            for r in split["rows"]
        ],
    )
    lines += [f"![reweighting]({linked(REWEIGHTING_PLOT)})", ""]
    lines += review.section(findings)
    lines += provenance_section(provenance)
    text = "\n".join(lines)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    with atomic_path(page_file(out)) as tmp:
        tmp.write_text(render(text, "hepsnake report", images=results))
    return text


def provenance_section(tables: list[str]) -> list[str]:
    """The "Provenance" section: ``tables`` (what the run is, the config hash, git commit,
    package versions, input files) folded in a ``<details>`` block (open with a click)."""
    summary = "What ran: classes, signal, config hash, git commit, packages, input files"
    return [
        "## Provenance",
        "",
        "<details>",
        f"<summary>{summary}</summary>",
        "",
        *tables,
        "</details>",
        "",
    ]
