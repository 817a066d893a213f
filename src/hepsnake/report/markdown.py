"""The ``report`` stage: ``results/report.md`` from the metrics, summaries and plots, plus the
model-comparison ROC (numbers are copied from ``results/metrics/*.json``, never recomputed)."""

import itertools
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake.config import config_hash
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import (
    BAYES,
    INCLUSIVE,
    background_counts,
    background_fractions,
    curves,
    discriminant_setup,
    reference_rocs,
    roc_sets,
    signal_mask,
)
from hepsnake.evaluate.stage import trained_values
from hepsnake.io.atomic import atomic_path
from hepsnake.io.figure import use_style
from hepsnake.io.h5 import DEFAULT_UNIT
from hepsnake.provenance import git_commit, package_versions
from hepsnake.report.page import render
from hepsnake.report.summary import summary_lines


def fmt(value: Any) -> str:
    """Numbers as the report prints them (4 decimals; counts as integers; null, i.e. a
    non-finite value in the JSON, as "-")."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A GitHub/GitLab Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return [*lines, ""]


def compare_roc(
    models: list[str], predictions: dict[str, str], config: dict[str, Any], output: Path
) -> None:
    """Every model's and reference tagger's rejection curves (inclusive, per background) on
    one figure, with their statistical bands, on the signal, discriminant and background
    fractions the metrics use; the Bayes-optimal curve where the toy truth is known (the
    same test jets in every file: taken from the first), and a parameterised model's own (at
    the parameters it saw, :func:`roc_sets`); the ratio panel to ``evaluate.ratio_reference``
    (default: the first model)."""
    ev = config["evaluate"]
    signal, references = ev["signal"], ev.get("reference_taggers") or {}
    setup = discriminant_setup(ev, config["class_names"])
    plot: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    counts: dict[str, dict[str, float]] = {}
    for model in models:
        with h5py.File(predictions[model], "r") as h5:
            jets = h5["jets"][:]
            names = [str(c) for c in h5["jets"].attrs["class_names"]]
        scan = config.get("parameters", {}).get(model, {})
        fractions = background_fractions(jets["flavour_label"], names, signal, setup.fractions)
        scanned = scan.get("names") or []
        sets = roc_sets(jets, model, names, signal, fractions, None, scanned, setup.shared)
        is_sig = signal_mask(jets, names, signal, scan.get("train"))
        taggers = {model: sets[model]}
        # a parameterised model's Bayes-optimal reference knows each jet's parameters, as the
        # model did: its own curve, in its colour; the others share one
        own = len(scanned) == 1 and f"{model}_{scanned[0]}" in jets.dtype.names
        bayes = f"{BAYES} ({model})" if own else BAYES
        if BAYES in sets and bayes not in plot:
            taggers[bayes] = sets[BAYES]
        for name, spec in references.items():
            if name not in plot:  # the same test jets in every file: scored once
                taggers[name] = reference_rocs(jets, name, spec, names, signal, fractions)
        for name, rocs in taggers.items():
            plot[name] = curves(rocs, is_sig)
            counts[name] = background_counts(rocs)
    if BAYES in plot:  # drawn last, over the models
        plot[BAYES] = plot.pop(BAYES)
    wording = ev.get("signal_label") or signal
    reference = ev.get("ratio_reference") or models[0]
    plots.plot_roc(plot, output, f"signal: {wording}", wording, reference, counts)


def export_section(benchmarks: list[str], results: Path) -> list[str]:
    """The export table: validation, latency, throughput and AUC per backend, targets."""
    rows, targets, plots = [], [], []
    for path in benchmarks:
        bench = json.loads(Path(path).read_text())
        model = bench["model"]
        valid = json.loads((Path(path).parent / "validation.json").read_text())
        for backend, entry in bench["backends"].items():
            diff = {
                "onnx_fp32": valid["fp32"]["max_abs_diff_vs_pytorch"],
                "onnx_int8": valid["int8"]["max_abs_diff_vs_fp32"],
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
        for name, target in bench["targets"].items():
            state = "met" if target["met"] else "**not met**"
            targets.append([model, name, target["value"], target["target"], state])
        plot = Path(path).with_name("benchmark.png")
        if plot.exists():
            link = plot.resolve().relative_to(results.resolve())
            plots.append(f"![{model} export benchmark]({link})")
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
    lines += table(["model", "target", "value", "required", "state"], targets)
    return [*lines, *plots, ""]


ROC_NAMES = {INCLUSIVE: "all backgrounds"}
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


def roc_entries(met: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The inclusive ROC entry of a metrics file (or of one reference tagger in it), then one
    per background class."""
    return {INCLUSIVE: met[INCLUSIVE], **met["backgrounds"]}


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
    images = [f"![{m} {p}](plots/{m}/{p})" for f in tasks.values() for p in f.get("plots", [])]
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
        if (results / "plots" / m / f"{name}.png").exists():
            lines.append(f"![{m} {name}](plots/{m}/{name}.png)")
    return [*lines, ""]


def tune_section(summary_path: str, results: Path) -> list[str]:
    """A tuning study: its best trial, the five best trials, Optuna's history and importance
    plots (made by rule tune_best)."""
    study = json.loads(Path(summary_path).read_text())
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


def dropped_warnings(where: str, summary: dict[str, Any]) -> list[str]:
    """One warning per reason of a summary's ``dropped`` {reason: jets} (nested per sample
    or stage allowed) with jets dropped."""
    out = []
    for reason, count in summary.get("dropped", {}).items():
        if isinstance(count, dict):
            out += dropped_warnings(f"{where}, {reason}", {"dropped": count})
        elif count:
            out.append(f"{where}: {count} jets dropped ({reason})")
    return out


def small_class_warnings(split: dict[str, Any], class_names: list[str], minimum: int) -> list[str]:
    """Classes with fewer than ``minimum`` jets in the val or test split."""
    if split.get("kind", "main") != "main":
        return []
    out = []
    for part in ("val", "test"):
        counts = dict.fromkeys(class_names, 0)
        for row in split["rows"]:
            if row["split"] == part and row["class"] in counts:
                counts[row["class"]] += row["jets"]
        out += [
            f"class {c}: {n} jets in the {part} split (fewer than {minimum})"
            for c, n in counts.items()
            if n < minimum
        ]
    return out


def model_warnings(m: str, met: dict[str, Any], evaluate: dict[str, Any]) -> list[str]:
    """Best epoch 0, an AUC below 0.5, one output vector shared by many jets, pt bins that
    miss most jets (e.g. GeV edges on MeV jets), the K-S gate."""
    out = []
    if met["training"]["best_epoch"] == 0:
        out.append(f"model {m}: best epoch is 0 (it did not improve after the first epoch)")
    for name, entry in roc_entries(met).items():
        if entry["auc"] is not None and entry["auc"] < 0.5:
            label = ROC_NAMES.get(name, name)
            out.append(f"model {m}: AUC {fmt(entry['auc'])} vs {label}, worse than random")
    share = met.get("constant_output", {})
    if share.get("fraction", 0.0) > evaluate.get("constant_fraction", 0.1):
        outputs = ", ".join(f"{p:.5g}" for p in share["outputs"])
        out.append(
            f"model {m}: {share['fraction']:.1%} of the test jets get one identical output"
            f" ({outputs})"
        )
    bins = met.get("pt_bins", {})
    if bins.get("fraction_inside", 1.0) < 0.5:
        edges = ", ".join(f"{e:g}" for e in bins["edges"])
        out.append(
            f"model {m}: the pt bins [{edges}] {bins['unit']} hold only"
            f" {bins['fraction_inside']:.0%} of the test jets (evaluate.pt_bins are in"
            f" {bins['unit']}, the jets' unit)"
        )
    if met["training"]["gate_fallback"]:
        out.append(f"model {m}: no epoch passed the K-S gate; best = lowest validation loss")
    return out


def run_lines(config: dict[str, Any], first: dict[str, Any]) -> list[str]:
    """What the run is: classes, signal, discriminant, working points, reference taggers and
    the energy unit (from the first model's metrics)."""
    ev = config["evaluate"]
    refs = ", ".join(ev.get("reference_taggers") or {}) or "none"
    scan = next(iter(config.get("parameters", {}).values()), {})
    return table(
        ["item", "value"],
        [
            ["classes", ", ".join(config["class_names"])],
            [
                "signal",
                f"{ev.get('signal_label') or ev['signal']}{trained_values(scan.get('train', {}))}",
            ],
            [
                "discriminant",
                f"{first['discriminant']['type']}: {first['discriminant']['formula']}",
            ],
            ["reference taggers", refs],
            ["energy unit", first.get("energy_unit", DEFAULT_UNIT)],
        ],
    )


def report(
    config: dict[str, Any],
    metrics_files: dict[str, str],
    predictions: dict[str, str],
    split_summary: str,
    convert_summaries: list[str],
    output: str,
    repo: str = ".",
    exports: list[str] | None = None,
    epochs: str | None = None,
    studies: list[str] | None = None,
) -> str:
    """Write the report, its self-contained HTML page (:func:`page_path`) and the comparison
    plot; return the Markdown text.

    ``config`` is the report's stage slice (with ``config_hash``, the whole config's, and
    ``parameters``, each model's scanned parameters) or a whole config. ``metrics_files`` and
    ``predictions`` map each model name to its file; ``exports`` are the export stage's
    ``benchmark.json`` files (each next to its ``validation.json``); ``epochs`` the table of
    ``hepsnake compare``, ``studies`` the ``study.json`` of tuning studies.
    """
    out = Path(output)
    results = out.parent
    ev = config["evaluate"]
    signal = ev.get("signal_label") or ev["signal"]
    models = list(metrics_files)
    metrics = {m: json.loads(Path(path).read_text()) for m, path in metrics_files.items()}
    compare_png = results / "plots" / "compare" / "roc.png"
    use_style(ev.get("plot_style"))
    compare_roc(models, predictions, config, compare_png)
    digest = config["config_hash"] if "config_hash" in config else config_hash(config)
    provenance = run_lines(config, next(iter(metrics.values())))
    provenance += table(
        ["item", "value"],
        [["config hash (sha256)", digest], ["git commit", git_commit(Path(repo))]],
    )
    provenance += table(["package", "version"], [[k, v] for k, v in package_versions().items()])
    warnings: list[str] = []
    inputs = []
    for path in convert_summaries:
        summary = json.loads(Path(path).read_text())
        for f in summary["files"]:
            inputs.append(
                [summary["sample"], f["path"], f.get("xxh3_64", "-"), f.get("jets_written", "-")]
            )
        warnings += [
            f"sample {summary['sample']}: skipped {s['reason']}" for s in summary["skipped"]
        ]
        if summary.get("truncated_constituents"):
            n = summary["truncated_constituents"]
            warnings.append(f"sample {summary['sample']}: {n} constituents truncated")
        warnings += dropped_warnings(f"sample {summary['sample']}", summary)
    provenance += ["Input files:", "", *table(["sample", "file", "xxh3-64", "jets"], inputs)]

    dataset = ["## Dataset", ""]
    split = json.loads(Path(split_summary).read_text())
    dataset += table(
        ["split", "sample", "class", "jets", "Σ weight", "Σ train weight"],
        [
            [r["split"], r["sample"], r["class"], r["jets"], r["sum_weight"], r["sum_train_weight"]]
            for r in split["rows"]
        ],
    )
    dataset += ["![reweighting](plots/prepare/reweighting.png)", ""]
    warnings += dropped_warnings("split", split)
    warnings += small_class_warnings(split, config["class_names"], ev.get("min_class_jets", 100))

    references = list(ev.get("reference_taggers") or {})
    results_lines = comparison_section(
        metrics, signal, ev["signal"], compare_png.relative_to(results), references
    )
    negative = 0
    for m, met in metrics.items():
        results_lines += model_section(m, met, results, signal)
        warnings += model_warnings(m, met, ev)
        negative = max(negative, met.get("weights", {}).get("negative", 0))
    if negative:
        warnings.append(f"test jets: {negative} have negative weights")
    if exports:
        results_lines += export_section(exports, results)
    if epochs:
        from hepsnake.report.compare import compare_section

        results_lines += compare_section(epochs, "plots/compare/epochs.png")
    for study in studies or []:
        results_lines += tune_section(study, results)

    # the headline first (the warnings' one line, the summary, the results), then the
    # dataset, every warning, and the provenance folded away
    plural = "" if len(warnings) == 1 else "s"
    lines = [
        "# hepsnake report",
        "",
        f"{len(warnings)} warning{plural}: see [Warnings](#warnings).",
        "",
    ]
    lines += summary_lines(metrics, signal, config["report"]["best_by"], len(warnings))
    lines += results_lines
    lines += dataset
    lines += ["## Warnings", ""]
    lines += [f"- {w}" for w in warnings] or ["- none"]
    lines += ["", *provenance_section(provenance)]
    text = "\n".join(lines) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    with atomic_path(page_path(out)) as tmp:
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


def page_path(markdown: Path) -> Path:
    """The self-contained HTML page of ``report.md``: ``report.md.html`` beside it."""
    return markdown.with_name(f"{markdown.name}.html")
