"""Issue 14's task figures on the toy: a multi-task model against the Bayes-optimal
per-constituent AUC, and its jet AUC against the same model trained without the constituent
task (with the AUC's statistical error).

    python benchmarks/tasks.py [--model gn2] [--jets 40000] [--epochs 10] [--workdir DIR]
        [--no-single] [--smoke]

Simulates QCD, BIB and signal (mS 16) jets, converts, splits and normalises them, trains the
shipped model twice (with its tasks, and with the jet classification only; ``--no-single``
trains the first only), predicts the test split and prints each task's headline figures
from :func:`hepsnake.evaluate.stage.score_tasks`, and per constituent task with a Bayes law
the AUC of the model's jet posterior times that law. The acceptance figures of
``benchmarks/README.md`` are from ``--jets 300000 --epochs 20`` (~50 min on 2 cores).
``--smoke`` (2000 jets, one epoch; a test runs it) only checks that the script runs.
"""

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from _common import REPO, parse_args, shipped_config, work_directory
from sklearn.metrics import roc_auc_score

from hepsnake.config import contract, load_model, resolve
from hepsnake.config.contracts import EvaluateContract
from hepsnake.evaluate.predict import predict
from hepsnake.evaluate.stage import score_tasks
from hepsnake.models.tasks import build_tasks
from hepsnake.models.tasks.base import Context
from hepsnake.models.tasks.constituent_classification import (
    ConstituentClassification,
    class_fractions,
)
from hepsnake.names import prob_column
from hepsnake.roc import auc
from hepsnake.simulate.prepared import prepared_toy
from hepsnake.training.run import train


def prepared(root: Path, n_jets: int) -> tuple[dict[str, Any], dict[str, str]]:
    """QCD : BIB : signal = 5 : 2 : 3 of ``n_jets``, through convert, split and norm."""
    config = shipped_config() | {"model_dir": str(REPO / "config" / "models")}
    jets = {"qcd": int(n_jets * 0.5), "bib": int(n_jets * 0.2), "sig": int(n_jets * 0.3)}
    return prepared_toy(config, root, jets, 7)


def auc_error(value: float, n_sig: int, n_bkg: int) -> float:
    """Hanley & McNeil's standard error of an AUC."""
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    var = value * (1 - value) + (n_sig - 1) * (q1 - value**2) + (n_bkg - 1) * (q2 - value**2)
    return float(np.sqrt(var / (n_sig * n_bkg)))


def gap_split(evaluation: EvaluateContract, predictions: Path) -> dict[str, float]:
    """Per constituent task with a ``bayes`` law: the AUC of the model's own jet class
    posterior times the toy's exact per-constituent law, i.e. how much of the gap to the Bayes
    AUC the jet half of the model costs. The model is trained under class-balanced weights
    (equal priors), so its posterior is moved to the evaluated class fractions by multiplying
    by them."""
    name, context = evaluation.model, Context(list(evaluation.class_names))
    out = {}
    with h5py.File(predictions) as h5:
        jets = h5["jets"][:]
        for task in build_tasks(evaluation.tasks, context):
            if not isinstance(task, ConstituentClassification) or not task.bayes:
                continue
            p_class = np.stack([jets[prob_column(name, c)] for c in context.class_names], -1)
            p_class = p_class * class_fractions(jets, len(context.class_names))
            table = h5[task.dataset][:]
            score = task.class_mixture(table, p_class / p_class.sum(-1, keepdims=True))
            keep, truth, _ = task.scored(table, name)
            is_signal = truth == task.classes.index(task.signal)
            out[task.name] = float(roc_auc_score(is_signal, score[keep]))
    return out


def run(config: dict, outputs: dict, root: Path, name: str, model: dict) -> dict[str, Any]:
    """Train, predict and score ``model``; its task figures plus the signal-vs-QCD jet AUC."""
    resolved = resolve(config, models={name: model})
    part = contract(resolved, "train", model=name)
    paths = (outputs["train"], outputs["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    start = time.perf_counter()
    summary = train(part, *paths, str(root / name))
    seconds = time.perf_counter() - start
    predictions = root / f"{name}.h5"
    predict(name, str(root / name / "best.ckpt"), outputs["test"], str(predictions))
    with h5py.File(predictions) as h5:
        jets = h5["jets"][:]
    names = config["class_names"]
    sig, qcd = (
        jets["flavour_label"] == names.index("sig"),
        jets["flavour_label"] == names.index("qcd"),
    )
    p_sig, p_qcd = jets[prob_column(name, "sig")], jets[prob_column(name, "qcd")]
    score = np.log(p_sig + 1e-12) - np.log(p_qcd + 1e-12)
    jet_auc = auc(score[sig], score[qcd])  # every jet counts once
    evaluation = contract(resolved, "evaluate", model=name)
    figures = score_tasks(evaluation, str(predictions), root / name)["tasks"]
    figures.pop("jet_classification")
    for task, entry in gap_split(evaluation, predictions).items():
        figures[task]["model_jets_exact_law_auc"] = entry
    return {
        "jet_auc": jet_auc,
        "jet_auc_error": auc_error(jet_auc, int(sig.sum()), int(qcd.sum())),
        "tasks": figures,
        "epochs": len(summary["epochs"]),
        "train_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gn2")
    parser.add_argument("--jets", type=int, default=40000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workdir")
    parser.add_argument(
        "--no-single",
        dest="single",
        action="store_false",
        help="train only the multi-task model (its task figures; no jet AUC comparison)",
    )
    args = parse_args(parser, {"jets": 2000, "epochs": 1})
    with work_directory(args.workdir) as root:
        config, outputs = prepared(root, args.jets)
        model = copy.deepcopy(load_model(config, args.model))
        model["training"]["max_epochs"] = args.epochs
        single = copy.deepcopy(model)
        single["model"]["tasks"] = [
            t for t in model["model"]["tasks"] if t["type"] == "jet_classification"
        ]
        results = {"multi-task": run(config, outputs, root, "multi", model)}
        if args.single:
            results["jet classification only"] = run(config, outputs, root, "single", single)
    print(f"{args.model} on {args.jets} toy jets, {args.epochs} epochs at most")
    for label, result in results.items():
        print(
            f"{label:>24}: jet AUC (sig vs QCD) {result['jet_auc']:.4f}"
            f" ± {result['jet_auc_error']:.4f} in {result['epochs']} epochs,"
            f" {result['train_seconds']:.0f} s"
        )
        for task, figures in result["tasks"].items():
            shown = {k: v for k, v in figures.items() if isinstance(v, float)}
            print(f"{'':>26}{task}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    if not args.single:
        return
    difference = results["multi-task"]["jet_auc"] - results["jet classification only"]["jet_auc"]
    error = np.hypot(
        results["multi-task"]["jet_auc_error"], results["jet classification only"]["jet_auc_error"]
    )
    print(f"jet AUC multi-task − single-task: {difference:+.4f} (± {error:.4f} stat.)")


if __name__ == "__main__":
    main()
