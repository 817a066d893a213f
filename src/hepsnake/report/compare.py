"""``hepsnake compare``: the best epochs of several models or trials, and their curves.

Each run's training ``metrics.json`` holds one record per epoch. Three rankings: the lowest
validation loss, the lowest K-S sum (adversarial models: the data/MC K-S distances of every
class output on the control validation split, added) and the highest validation AUC.
"""

import re
from typing import Any

from hepsnake.errors import HepsnakeError
from hepsnake.io.atomic import write_json
from hepsnake.io.files import TRAINING_METRICS_KIND, read_json
from hepsnake.report.tables import table

# the per-class K-S keys of training/adversarial.py: val_ks_p<class>, not its pT-binned ones
KS_KEY = re.compile(r"^val_ks_p(?!ass$)(?!.*_pt[^_]+_[^_]+$).+$")
# figure -> (how an epoch's value is read, whether lower is better, axis label)
FIGURES = {
    "val_loss": (lambda e: e.get("val_loss"), True, "validation loss"),
    "ks_sum": (
        lambda e: (
            sum(v for k, v in e.items() if KS_KEY.match(k)) if any(map(KS_KEY.match, e)) else None
        ),
        True,
        "K-S sum (control, data vs MC)",
    ),
    "val_auc": (lambda e: e.get("val_auc"), False, "validation AUC (one-vs-rest mean)"),
}


def curves(epochs: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Figure -> (epoch, value) of each epoch that has it."""
    out: dict[str, list[tuple[int, float]]] = {}
    for name, (read, _, _) in FIGURES.items():
        points = [(int(e["epoch"]), read(e)) for e in epochs]
        out[name] = [(x, float(y)) for x, y in points if y is not None]
    return out


def best_epochs(series: dict[str, list[tuple[int, float]]]) -> dict[str, dict[str, Any] | None]:
    """Figure -> {epoch, value} of its best epoch (None where the run has no such figure)."""
    best: dict[str, dict[str, Any] | None] = {}
    for name, points in series.items():
        lower = FIGURES[name][1]
        if not points:
            best[name] = None
            continue
        epoch, value = (min if lower else max)(points, key=lambda p: p[1])
        best[name] = {"epoch": epoch, "value": value}
    return best


def compare(runs: dict[str, str], output: str, plot: str) -> dict[str, Any]:
    """Rank the epochs of each run (name -> its ``metrics.json``); write the table to
    ``output`` and the per-epoch curves of the three figures to ``plot``."""
    rows = []
    for name, path in runs.items():
        epochs = read_json(path, TRAINING_METRICS_KIND, ["epochs"])["epochs"]
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise HepsnakeError(path, "not a training metrics.json (no list of epoch records)")
        series = curves(epochs)
        rows.append({"name": name, "metrics": path, "best": best_epochs(series), "curves": series})
    table = {"figures": list(FIGURES), "rows": rows}
    plot_curves(rows, plot)
    write_json(output, table)
    return table


def plot_curves(rows: list[dict[str, Any]], output: str) -> None:
    """One panel per figure, one line per run, its best epoch marked."""
    import matplotlib.pyplot as plt

    from hepsnake.io.figure import save_figure

    fig, axes = plt.subplots(1, len(FIGURES), figsize=(5 * len(FIGURES), 4))
    for ax, (name, (_, _, label)) in zip(axes, FIGURES.items(), strict=True):
        for row in rows:
            points = row["curves"][name]
            if points:
                line = ax.plot(*zip(*points, strict=True), marker=".", label=row["name"])[0]
                best = row["best"][name]
                ax.plot(best["epoch"], best["value"], "*", ms=12, color=line.get_color())
        if not any(row["curves"][name] for row in rows):
            ax.text(0.5, 0.5, "not logged by these runs", ha="center", transform=ax.transAxes)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, output)


def compare_section(table_path: str, plot: str) -> list[str]:
    """The report's "Best epochs" section: one row per run, the curves plot below."""
    data = read_json(table_path, "epochs table of hepsnake compare", ["figures", "rows"])

    def cell(best: dict[str, Any] | None) -> str:
        return "-" if best is None else f"{best['value']:.4g} (epoch {best['epoch']})"

    rows = [[r["name"], *(cell(r["best"][f]) for f in data["figures"])] for r in data["rows"]]
    header = ["run", *(f"best {FIGURES[f][2]}" for f in data["figures"])]
    return ["## Best epochs", "", *table(header, rows), f"![epochs]({plot})", ""]
