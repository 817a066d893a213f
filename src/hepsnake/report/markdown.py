"""The ``report`` stage: ``results/report.md`` from the metrics, summaries and plots, plus the
model-comparison ROC (numbers are copied from ``results/metrics/*.json``, never recomputed)."""

import hashlib
import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepsnake.evaluate import plots
from hepsnake.evaluate.metrics import discriminant
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
    """Numbers as the report prints them (4 decimals; counts as integers)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if np.isinf(value):
            return "inf"
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


def compare_roc(models: list[str], predictions: dict[str, str], signal: str, output: Path) -> None:
    """Every model's rejection curves on one figure (per background class)."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for model in models:
        with h5py.File(predictions[model], "r") as h5:
            jets = h5["jets"][:]
            names = [str(c) for c in h5["jets"].attrs["class_names"]]
        probs = {c: jets[f"{model}_p{c}"].astype(np.float64) for c in names}
        sig = jets["label"] == names.index(signal)
        curves[model] = {}
        for i, b in enumerate(names):
            if b != signal and np.any(jets["label"] == i):
                score = discriminant(probs, signal, {b: 1.0})
                curves[model][b] = plots.rejection_curve(score[sig], score[jets["label"] == i])
    plots.plot_roc(curves, output)


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
        " inflate it); wall-clock figures are in `export/<model>/benchmark.json`.",
        "",
    ]
    lines += table(
        [
            "model",
            "backend",
            "latency batch 1 (ms)",
            "throughput batch 1000 (jets/s)",
            "AUC",
            "max abs. diff (fp32 vs PyTorch, int8 vs fp32)",
        ],
        rows,
    )
    lines += table(["model", "target", "value", "required", "state"], targets)
    return [*lines, *plots, ""]


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

    ``metrics_files`` and ``predictions`` map each model name to its file; ``exports`` are
    the export stage's ``benchmark.json`` files (each next to its ``validation.json``).
    """
    out = Path(output)
    results = out.parent
    signal = config["evaluate"]["signal"]
    models = list(metrics_files)
    metrics = {m: json.loads(Path(path).read_text()) for m, path in metrics_files.items()}
    compare_png = results / "plots" / "compare" / "roc.png"
    compare_roc(models, predictions, signal, compare_png)
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    lines = ["# hepsnake report", ""]
    lines += ["## Run summary", ""]
    lines += table(
        ["item", "value"],
        [["config hash (sha256)", config_hash], ["git commit", git_commit(Path(repo))]],
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

    lines += ["## Model comparison", ""]
    backgrounds = list(next(iter(metrics.values()))["backgrounds"])
    header = ["model", "best epoch"]
    for b in backgrounds:
        header += [f"AUC sig vs {b}", f"Bayes AUC sig vs {b}"]
    header += ["data/MC K-S (p_sig)"]
    comp = []
    for m, met in metrics.items():
        row: list[Any] = [m, met["training"]["best_epoch"]]
        for b in backgrounds:
            row += [met["backgrounds"][b]["auc"], met["backgrounds"][b].get("bayes_auc", "-")]
        row.append(met.get("control_ks", {}).get(signal, {}).get("ks", "-"))
        comp.append(row)
    lines += table(header, comp)
    lines += [f"![comparison ROC]({compare_png.relative_to(results)})", ""]

    for m, met in metrics.items():
        lines += [f"## Model `{m}`", ""]
        rows = []
        for b, entry in met["backgrounds"].items():
            for wp, rej in entry["rejection"].items():
                rows.append([b, wp, rej["rejection"], rej["uncertainty"]])
        lines += table(["background", "signal efficiency", "rejection", "± stat."], rows)
        if met["masses"]:
            mass_rows = []
            for mass, entry in sorted(met["masses"].items(), key=lambda kv: float(kv[0])):
                for b in backgrounds:
                    if b in entry:
                        mass_rows.append(
                            [
                                mass,
                                "yes" if entry["unseen"] else "no",
                                b,
                                entry[b]["auc"],
                                entry[b].get("bayes_auc", "-"),
                            ]
                        )
            lines += ["Per signal mass:", ""]
            lines += table(["mS", "unseen", "background", "AUC", "Bayes AUC"], mass_rows)
        if "sb_scan" in met:
            scan = met["sb_scan"]
            best, cut = fmt(scan["max_significance"]), fmt(scan["best_cut"])
            lines += [f"Maximum S/√B {best} at a cut of {cut}.", ""]
        if "control_ks" in met:
            lines += table(
                ["output", "data/MC K-S", "p-value"],
                [[c, v["ks"], v["p_value"]] for c, v in met["control_ks"].items()],
            )
        for name in ("roc", "outputs", "training", "sb_scan", "control", "mass_efficiency"):
            if (results / "plots" / m / f"{name}.png").exists():
                lines.append(f"![{m} {name}](plots/{m}/{name}.png)")
        lines.append("")
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
