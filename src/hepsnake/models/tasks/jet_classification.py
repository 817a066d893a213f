"""Jet classification: the headline task; one probability per class per jet.

Its output is the tagger's ``logits``; its fields (and ONNX outputs) are puma's
``{model}_p{class}`` columns, also predicted at every parameter point of a parameterised
model. It scores itself: ROC, AUC and rejections against the Bayes-optimal classifier,
reference taggers, pt bins, S/√B, parameter scan and control region, with their plots.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hepsnake.models.tasks.base import Context, Scores, Scoring, Task, Trunk
from hepsnake.names import LABEL, prob_column

if TYPE_CHECKING:
    import torch
    from torch import nn

OUTPUT = "logits"  # the tagger's output key of the jet classification


class JetClassification(Task):
    """Weighted cross-entropy over the configured classes (class and per-jet weights); its
    label is the batch's ``label`` (the ``flavour_label`` field every loader reads)."""

    level = "jet"
    headline = True
    scanned = True

    def __init__(
        self,
        context: Context,
        name: str = "jet_classification",
        weight: float = 1.0,
        hidden: Sequence[int] | None = None,
        dropout: float | None = None,
    ) -> None:
        super().__init__(context, name, weight)
        self.hidden, self.dropout = hidden, dropout

    @property
    def output_key(self) -> str:
        return OUTPUT

    def head(self, trunk: Trunk) -> "nn.Module":
        from hepsnake.models.tasks.heads import JetHead

        hidden = self.hidden if self.hidden is not None else trunk.head_hidden
        dropout = self.dropout if self.dropout is not None else trunk.head_dropout
        return JetHead(trunk.jet_width, hidden, len(self.context.class_names), dropout)

    def loss(
        self, output: "torch.Tensor", batch: Mapping[str, "torch.Tensor"]
    ) -> dict[str, "torch.Tensor"]:
        import torch
        import torch.nn.functional as F

        from hepsnake.models.tasks.heads import weighted_mean

        logits = output.float()
        n = len(self.context.class_names)
        weights = torch.tensor(
            self.context.class_weights or [1.0] * n, dtype=logits.dtype, device=logits.device
        )
        ce = F.cross_entropy(logits, batch["label"], weight=weights, reduction="none")
        correct = (logits.argmax(-1) == batch["label"]).float()
        return {
            "loss": weighted_mean(ce, batch["weight"]),
            "acc": weighted_mean(correct, batch["weight"]),
        }

    def logged(self, parts: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """``ce`` and ``acc``: the names of a single-task model's training history."""
        return {"ce": parts["loss"], "acc": parts["acc"]}

    def probabilities(self, out: Mapping[str, "torch.Tensor"]) -> "torch.Tensor":
        """The class probabilities (B, classes) in the tagger's outputs ``out``."""
        return out[self.output_key].float().softmax(-1)

    def predict_names(self, model: str) -> list[str]:
        return [prob_column(model, c) for c in self.context.class_names]

    def predict(self, output: "torch.Tensor", model: str) -> dict[str, "torch.Tensor"]:
        return dict(zip(self.predict_names(model), self.export(output), strict=True))

    def export(self, output: "torch.Tensor") -> list["torch.Tensor"]:
        """One probability (B,) per class, in class order."""
        return list(output.float().softmax(-1).unbind(-1))

    def evaluate(
        self, table: np.ndarray, model: str, jets: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Nothing from a table alone: its figures need the ``evaluate`` settings (signal,
        discriminant, working points), so :meth:`score` computes them."""
        return {}

    def score(self, run: Scoring) -> Scores:
        """Every metric of the model's class probabilities and their plots (in the model's
        plot folder): at the top level of the metrics, AUCs and rejections inclusive and per
        background class, per parameter point and of each reference tagger (Bayes-optimal
        ones where the toy truth exists), pt bins, S/√B, the output shared by most jets and
        the control region's data/MC K-S; under ``tasks``, the inclusive AUC (and its
        Bayes-optimal one and the gap).

        Inclusive signal means the signal at the training values throughout (ROC,
        distributions, S/√B, pt bins); each value enters the per-parameter ROCs and
        efficiencies. Reference taggers are scored on the same jets.
        """
        from hepsnake.errors import HepsnakeError
        from hepsnake.evaluate import plots
        from hepsnake.evaluate.metrics import (
            INCLUSIVE,
            binned_auc,
            binned_efficiency,
            constant_output,
            control_ks,
            curves,
            data_mc_weights,
            discriminant_setup,
            discriminant_text,
            model_metrics,
            parameter_scan,
            physical_weights,
            pt_panels,
            roc_book,
            roc_jet_weights,
            sb_scan,
            signal_mask,
            stored_curves,
            trained_values,
            working_points,
        )
        from hepsnake.paths import plot_file

        ev, model, unit, out = run.settings, run.model, run.unit, run.plots
        jets, control = run.jets, run.tables.get("control_jets")
        names, signal = list(self.context.class_names), str(ev.signal)
        wording = ev.signal_name
        scan = run.parameters
        train = {k: list(v) for k, v in scan.train.items()}
        present = np.bincount(jets[LABEL], minlength=len(names))[: len(names)] > 0
        if not present[names.index(signal)] or present.sum() < 2:
            missing = "background" if present[names.index(signal)] else signal
            raise HepsnakeError(run.source, f"no {missing} jets in the test split: no ROC")
        setup = discriminant_setup(ev, names)
        wps = working_points(ev, setup)
        references = ev.reference_taggers
        jet_weights, roc_weights = roc_jet_weights(jets, names, ev.roc_weights)
        book = roc_book(
            jets,
            model,
            names,
            signal,
            setup.fractions,
            list(scan.names),
            setup.shared,
            references,
            jet_weights,
        )
        formula = discriminant_text(signal, book.fractions)
        metrics: dict[str, Any] = {"discriminant": {"type": setup.kind, "formula": formula}}
        metrics |= model_metrics(jets, book, names, signal, wps, train)
        labels = jets[LABEL]
        is_sig = signal_mask(jets, names, signal, train)
        roc_curves = {
            label: curves(rocs, is_sig, jet_weights) for label, rocs in book.inclusive.items()
        }
        roc_curves |= {
            name: curves(rocs, is_sig, jet_weights) for name, rocs in book.references.items()
        }
        reference = ev.ratio_reference or next(iter(references), None)
        if reference not in roc_curves:  # another model: its ratio is in the report's comparison
            reference = None
        title = f"signal: {wording}{trained_values(train)}; {formula}"
        plots.plot_roc(roc_curves, plot_file(out, "roc"), title, wording, reference)
        metrics["roc_curves"] = stored_curves(roc_curves)  # the report's comparison plot

        score, mixed = book.inclusive[model][INCLUSIVE]
        keep = is_sig | (labels != names.index(signal))
        plots.plot_outputs(
            score, labels, names, {"all test jets": keep}, plot_file(out, "outputs"), formula
        )
        if ev.pt_bins:
            if "pt" not in jets.dtype.names:
                raise HepsnakeError(run.source, "no jet field 'pt' (set evaluate.pt_bins: null)")
            edges = list(ev.pt_bins)
            panels = {k: keep & v for k, v in pt_panels(jets["pt"], edges, unit).items()}
            plots.plot_outputs(score, labels, names, panels, plot_file(out, "outputs_pt"), formula)
            inside = (jets["pt"] >= edges[0]) & (jets["pt"] < edges[-1])
            metrics["pt_bins"] = {
                "edges": edges,
                "unit": unit,
                "inclusive_auc": binned_auc(score, mixed, is_sig, panels, jet_weights),
                "fraction_inside": float(inside.mean()) if len(jets) else 0.0,
            }
            wp = wps[len(wps) // 2]
            per_bin = binned_efficiency(score, labels, names, signal, is_sig, panels, wp)
            metrics["pt_bins"]["at_working_point"] = per_bin
            plots.plot_pt_efficiency(edges, unit, per_bin, wording, plot_file(out, "efficiency_pt"))

        weights = jets["weight"].astype(np.float64) if "weight" in jets.dtype.names else None
        physical, why_not = physical_weights(jets, ev.physical_weights)
        negative = int(np.sum(weights < 0)) if weights is not None else 0
        metrics["weights"] = {
            "physical": physical,
            "negative": negative,
            "note": why_not,
            "roc": roc_weights,  # the ROCs, AUCs, rejections and their pt bins
            "efficiency_pt": "jets: each test jet counts once",
            "sb_scan": "signed physics weights" if physical else "not drawn",
        }
        if physical and weights is not None:
            cuts, significance = sb_scan(score[keep], is_sig[keep], weights[keep])
            plots.plot_sb_scan(cuts, significance, plot_file(out, "sb_scan"))
            best = int(np.nanargmax(significance))
            metrics["sb_scan"] = {
                "best_cut": float(cuts[best]),
                "max_significance": float(significance[best]),
            }
        elif ev.physical_weights is not False:  # the rule declared the plot
            plots.plot_note(f"S/√B omitted: {why_not}", plot_file(out, "sb_scan"))
        metrics["constant_output"] = constant_output(jets, model, names)

        if book.points:
            wp = wps[len(wps) // 2]
            metrics["parameter_efficiency"], point_curves = parameter_scan(
                jets, book, names, signal, is_sig, wp
            )
            plots.plot_roc(
                point_curves,
                plot_file(out, "roc_param"),
                f"signal {wording} per parameter value",
                wording,
            )
            eff = metrics["parameter_efficiency"]
            plots.plot_param_efficiency(
                eff["efficiency"],
                wp,
                eff["background_efficiency"],
                plot_file(out, "param_efficiency"),
            )

        if control is not None:
            data_mc, metrics["weights"]["control"] = data_mc_weights(control)
            metrics["control_ks"] = control_ks(control, model, names, data_mc)
            column = prob_column(model, signal)
            plots.plot_control(
                control[column],
                control["is_data"].astype(bool),
                data_mc,
                metrics["control_ks"][signal],
                column,
                plot_file(out, "control"),
            )
        headline = metrics[INCLUSIVE]
        keys = ("auc", "bayes_auc", "auc_gap")
        return Scores({k: headline[k] for k in keys if k in headline}, metrics)
