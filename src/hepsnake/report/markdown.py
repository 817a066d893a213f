"""The ``report`` stage: ``results/report.md`` from the metrics, summaries and plots, plus the
model-comparison ROC (numbers are copied from ``results/metrics/*.json``, never recomputed)."""

import itertools
import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake.config import config_hash
from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import (
    INCLUSIVE,
    background_fractions,
    curves,
    roc_sets,
    signal_mask,
)
from hepsnake.io.atomic import atomic_path

PACKAGES = (
    "hepsnake",
    "snakemake",
    "uproot",
    "awkward",
    "h5py",
    "numpy",
    "torch",
    "lightning",
    "scikit-learn",
    "onnxruntime",
)


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


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: Path) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def compare_roc(
    models: list[str], predictions: dict[str, str], config: dict[str, Any], output: Path
) -> None:
    """Every model's rejection curves (inclusive, per background) on one figure, on the signal
    and background fractions the metrics use."""
    signal = config["evaluate"]["signal"]
    train_masses = config.get("simulate", {}).get("masses", {}).get("train")
    plot: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for model in models:
        with h5py.File(predictions[model], "r") as h5:
            jets = h5["jets"][:]
            names = [str(c) for c in h5["jets"].attrs["class_names"]]
        fractions = background_fractions(
            jets["label"], names, signal, config["evaluate"]["fractions"]
        )
        rocs = roc_sets(jets, model, names, signal, fractions)[model]
        plot[model] = curves(rocs, signal_mask(jets, names, signal, train_masses))
    plots.plot_roc(plot, output, f"signal: {signal} (training masses)")


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
        " is signal (every mass) against all other classes, unweighted, on the timed test jets:"
        " it compares the backends, not the models (see the model sections for that).",
        "",
    ]
    lines += table(
        [
            "model",
            "backend",
            "latency batch 1 (ms)",
            "throughput batch 1000 (jets/s)",
            "AUC (sig vs rest)",
            "max abs. diff (fp32 vs PyTorch, int8 vs fp32)",
        ],
        rows,
    )
    lines += table(["model", "target", "value", "required", "state"], targets)
    return [*lines, *plots, ""]


ROC_NAMES = {INCLUSIVE: "all backgrounds"}
MODEL_PLOTS = (
    "roc",
    "roc_mass",
    "outputs",
    "outputs_pt",
    "training",
    "sb_scan",
    "control",
    "mass_efficiency",
)


def roc_entries(met: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The inclusive ROC entry of a metrics file, then one per background class."""
    return {INCLUSIVE: met[INCLUSIVE], **met["backgrounds"]}


def comparison_section(metrics: dict[str, dict[str, Any]], signal: str, plot: Path) -> list[str]:
    """Best epoch, AUCs (model and Bayes-optimal) and the data/MC K-S of every model."""
    names = list(roc_entries(next(iter(metrics.values()))))
    header = ["model", "best epoch"]
    for name in names:
        header += [f"AUC sig vs {ROC_NAMES.get(name, name)}", "Bayes AUC"]
    header += [f"data/MC K-S (p_{signal})"]
    rows = []
    for m, met in metrics.items():
        row: list[Any] = [m, met["training"]["best_epoch"]]
        for entry in roc_entries(met).values():
            row += [entry["auc"], entry.get("bayes_auc", "-")]
        row.append(met.get("control_ks", {}).get(signal, {}).get("ks", "-"))
        rows.append(row)
    return ["## Model comparison", "", *table(header, rows), f"![comparison ROC]({plot})", ""]


def model_section(m: str, met: dict[str, Any], results: Path) -> list[str]:
    """Rejections, per-mass AUCs, mass efficiency, pt-bin AUCs, S/√B, K-S and plots of a model."""
    mix = ", ".join(f"{b} {fmt(f)}" for b, f in met["fractions"].items())
    lines = [f"## Model `{m}`", "", f"Background fractions (all backgrounds): {mix}.", ""]
    rows = [
        [ROC_NAMES.get(name, name), wp, rej["rejection"], rej["uncertainty"]]
        for name, entry in roc_entries(met).items()
        for wp, rej in entry["rejection"].items()
    ]
    lines += table(["background", "signal efficiency", "rejection", "± stat."], rows)
    if met["masses"]:
        rows = []
        for mass, entry in sorted(met["masses"].items(), key=lambda kv: float(kv[0])):
            unseen = "yes" if entry["unseen"] else "no"
            for name in roc_entries(met):
                if name in entry:
                    per = entry[name]
                    label = ROC_NAMES.get(name, name)
                    rows.append([mass, unseen, label, per["auc"], per.get("bayes_auc", "-")])
        lines += ["Per signal mass:", ""]
        lines += table(["mS", "unseen", "background", "AUC", "Bayes AUC"], rows)
    if "mass_efficiency" in met:
        eff = met["mass_efficiency"]
        lines += [
            f"Signal efficiency per mass at the background efficiency"
            f" {fmt(eff['background_efficiency'])} of the {eff['working_point']:g} working"
            " point (all backgrounds):",
            "",
        ]
        rows = sorted(map(list, eff["efficiency"].items()), key=lambda row: float(row[0]))
        lines += table(["mS", "signal efficiency"], rows)
    if "pt_bins" in met:
        edges, aucs = met["pt_bins"]["edges"], met["pt_bins"]["inclusive_auc"]
        bins = [f"{lo:g} – {hi:g}" for lo, hi in itertools.pairwise(edges)]
        rows = [[b, a] for b, a in zip(bins, aucs, strict=True)]
        lines += table(["jet pt", "AUC sig vs all backgrounds"], rows)
    scan = met["sb_scan"]
    best, cut = fmt(scan["max_significance"]), fmt(scan["best_cut"])
    lines += [f"Maximum S/√B {best} at a cut of {cut}.", ""]
    if "control_ks" in met:
        lines += table(
            ["output", "data/MC K-S", "p-value"],
            [[c, v["ks"], v["p_value"]] for c, v in met["control_ks"].items()],
        )
    for name in MODEL_PLOTS:
        if (results / "plots" / m / f"{name}.png").exists():
            lines.append(f"![{m} {name}](plots/{m}/{name}.png)")
    return [*lines, ""]


def report(
    config: dict[str, Any],
    metrics_files: dict[str, str],
    predictions: dict[str, str],
    split_summary: str,
    convert_summaries: list[str],
    output: str,
    repo: str = ".",
    exports: list[str] | None = None,
) -> str:
    """Write the report and the comparison plot; return the Markdown text.

    ``config`` is the report's stage slice (with ``config_hash``, the whole config's) or a
    whole config. ``metrics_files`` and ``predictions`` map each model name to its file;
    ``exports`` are the export stage's ``benchmark.json`` files (each next to its
    ``validation.json``).
    """
    out = Path(output)
    results = out.parent
    signal = config["evaluate"]["signal"]
    models = list(metrics_files)
    metrics = {m: json.loads(Path(path).read_text()) for m, path in metrics_files.items()}
    compare_png = results / "plots" / "compare" / "roc.png"
    compare_roc(models, predictions, config, compare_png)
    digest = config["config_hash"] if "config_hash" in config else config_hash(config)
    lines = ["# hepsnake report", ""]
    lines += ["## Run summary", ""]
    lines += table(
        ["item", "value"],
        [["config hash (sha256)", digest], ["git commit", git_commit(Path(repo))]],
    )
    lines += table(["package", "version"], [[k, v] for k, v in package_versions().items()])
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
    lines += ["### Input files", ""]
    lines += table(["sample", "file", "xxh3-64", "jets"], inputs)

    lines += ["## Dataset", ""]
    rows = json.loads(Path(split_summary).read_text())["rows"]
    lines += table(
        ["split", "sample", "class", "jets", "Σ weight", "Σ train weight"],
        [
            [r["split"], r["sample"], r["class"], r["jets"], r["sum_weight"], r["sum_train_weight"]]
            for r in rows
        ],
    )
    lines += ["![reweighting](plots/prepare/reweighting.png)", ""]

    lines += comparison_section(metrics, signal, compare_png.relative_to(results))
    for m, met in metrics.items():
        lines += model_section(m, met, results)
        if met["training"]["gate_fallback"]:
            warnings.append(
                f"model {m}: no epoch passed the K-S gate; best = lowest validation loss"
            )

    if exports:
        lines += export_section(exports, results)

    lines += ["## Warnings", ""]
    lines += [f"- {w}" for w in warnings] or ["- none"]
    text = "\n".join(lines) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return text
