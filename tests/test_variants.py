"""Adversarial and parameterised training: K-S, optimiser separation, λ = 0, parameters."""

import copy
import csv
import json
import logging

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, default_config, stage, train_contract
from scipy import stats
from torch import nn

from hepsnake.config import build, load_model, resolve, validate
from hepsnake.config.contracts import Parameters
from hepsnake.data.loader import H5Batches
from hepsnake.data.parameters import ParameterSampler, WithParameters
from hepsnake.errors import HepsnakeError
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.prepared import MASS_GRID, convert_samples
from hepsnake.simulate.toy import simulate, write_root
from hepsnake.stats import weighted_ks
from hepsnake.training.adversarial import AdversarialModule
from hepsnake.training.run import build_module, train


def test_weighted_ks_matches_scipy_with_unit_weights():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0.2, 1.1, 300)
    d, p = weighted_ks(a, b)
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=0.2)
    ties = weighted_ks(np.array([1, 1, 2, 3.0]), np.array([1, 2, 2, 4.0]))[0]
    assert ties == pytest.approx(stats.ks_2samp([1, 1, 2, 3.0], [1, 2, 2, 4.0]).statistic)


def test_weighted_ks_hand_computed():
    # CDF_a: 1→1/4, 2→2/4, 3→1;  CDF_b: 1→0, 2→1/4, 3→1/4, 4→1;  largest gap 3/4 at x = 3
    d, _ = weighted_ks(
        np.array([1.0, 2, 3]), np.array([2.0, 4]), np.array([1, 1, 2]), np.array([1, 3])
    )
    assert d == pytest.approx(0.75)


def parameters(block):
    """A model config's ``parameters`` block, typed (its ``test`` values the ``train`` ones)."""
    return build(Parameters, {"test": block["train"]} | block)


def test_background_parameters_follow_prob():
    sampler = ParameterSampler(
        parameters({"names": ["mS"], "train": {"mS": [5, 16, 55]}, "prob": {"mS": [1, 2, 7]}})
    )
    params = torch.full((20000, 1), float("nan"))
    params[:100] = 40.0  # signal jets keep their own value
    filled = sampler.fill(params, np.random.default_rng(1)).numpy()[:, 0]
    assert np.all(filled[:100] == 40.0)
    counts = [np.sum(filled[100:] == v) for v in (5, 16, 55)]
    expected = np.array([0.1, 0.2, 0.7]) * 19900
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    uniform = ParameterSampler(parameters({"names": ["mS"], "train": {"mS": [5, 16]}}))
    drawn = uniform.fill(torch.full((10000, 1), float("nan")), np.random.default_rng(2)).numpy()
    assert abs(np.mean(drawn == 5) - 0.5) < 0.03


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    config = default_config()
    config["samples"] = []
    for name, process, mass, n, role, label in (
        ("qcd", "qcd", None, 2000, "train", "qcd"),
        ("bib", "bib", None, 1000, "train", "bib"),
        ("sig5", "sig", 5.0, 700, "train", "sig"),
        ("sig55", "sig", 55.0, 700, "train", "sig"),
        ("data", "qcd", None, 1000, "control", "data"),
        ("mc", "qcd", None, 1000, "control", "mc"),
    ):
        write_root(
            simulate(name, process, n, 4, mass=mass, mismodel=name == "data", **MASS_GRID),
            root / f"{name}.root",
        )
        config["samples"].append(
            {
                "name": name,
                "files": [str(root / f"{name}.root")],
                "reader": "toy",
                "role": role,
                "label": label,
                "params": {"mS": mass} if mass else {},
            }
        )
    config["model_dir"] = str(REPO / "config" / "models")
    config = validate(config)
    convert_samples(resolve(config), root)
    main = {s: str(root / f"{s}.h5") for s in SPLITS}
    control = {s: str(root / f"control_{s}.h5") for s in SPLITS}
    split(
        stage(config, "split"),
        [str(root / f"{n}.h5") for n in ("qcd", "bib", "sig5", "sig55")],
        main,
        str(root / "m.json"),
    )
    split(
        stage(config, "split"),
        [str(root / f"{n}.h5") for n in ("data", "mc")],
        control,
        str(root / "c.json"),
        control=True,
    )
    norm_stats(
        stage(config, "norm"), main["train"], str(root / "norm.yaml"), str(root / "class.yaml")
    )
    return config, root, main, control


def tiny(config, name, **training):
    model = copy.deepcopy(load_model(config, name))
    model["model"].update(dim=8, init_nets={"default": {"hidden": [8]}}, head={"hidden": [8]})
    model["training"].update(max_epochs=2, batch_size=400, early_stopping=None, **training)
    return model


def part(config, model):
    """The train contract of ``model`` (a model config as data)."""
    return train_contract(config, model)


def test_parameterised_test_time_value(prepared):
    config, root, main, _ = prepared
    model = tiny(config, "parameterised")
    module = build_module(
        part(config, model), yaml.safe_load((root / "norm.yaml").read_text()), [1, 1, 1]
    )
    sampler = ParameterSampler(part(config, model).model.parameters)
    fixed = WithParameters(
        H5Batches(main["test"], module.spec, 300), sampler, 0, fixed={"mS": 40.0}
    )
    for batch in fixed:
        assert torch.all(batch["params"] == 40.0)
        assert module(batch)["logits"].shape[1] == 3
    drawn = WithParameters(H5Batches(main["train"], module.spec, 300), sampler, 0)
    values = torch.cat([b["params"][:, 0] for b in drawn])
    assert not torch.isnan(values).any() and set(values.unique().tolist()) == {5.0, 16.0, 55.0}


def manual_adversarial(prepared, seed=0):
    """A tiny adversarial module with its optimisers wired for steps outside a Trainer, one
    main batch and one control batch."""
    config, root, main, control = prepared
    model = tiny(config, "adversarial", gradient_clip=None, schedule="none")
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    torch.manual_seed(seed)
    module = build_module(part(config, model), norm, [1, 1, 1])
    assert isinstance(module, AdversarialModule)
    main_opt, disc_opt = module.configure_optimizers()
    module.optimizers = lambda: (main_opt, disc_opt)
    module.lr_schedulers = lambda: None
    module.manual_backward = lambda loss: loss.backward()
    batch = next(iter(H5Batches(main["train"], module.spec, 300)))
    ctrl = next(
        iter(
            H5Batches(
                control["train"],
                module.spec,
                300,
                extra_fields=(("jets", "is_data"), ("jets", "pt")),
            )
        )
    )
    return module, batch, ctrl


def test_optimiser_steps_touch_only_their_own_parameters(prepared):
    module, batch, ctrl = manual_adversarial(prepared)
    probs = module.control_probs(ctrl)

    def snapshot():
        return {k: v.detach().clone() for k, v in module.named_parameters()}

    before = snapshot()
    module.discriminator_step(ctrl, probs)
    after = snapshot()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("discriminator.") for k in changed)
    assert all(p.grad is None for p in module.model.parameters())  # main net not in the graph
    module.main_step(batch, ctrl, probs)
    final = snapshot()
    changed = {k for k in after if not torch.equal(after[k], final[k])}
    assert changed and all(k.startswith("model.") for k in changed)


def test_shared_control_forward_matches_separate_forwards(prepared):
    """One control forward for the discriminator and main steps updates both networks
    exactly as a fresh forward per step does (the discriminator step leaves the main net)."""
    shared, batch, ctrl = manual_adversarial(prepared)
    start = {k: v.clone() for k, v in shared.state_dict().items()}
    probs = shared.control_probs(ctrl)
    for _ in range(2):
        shared.discriminator_step(ctrl, probs)
    shared.main_step(batch, ctrl, probs)
    separate, batch, ctrl = manual_adversarial(prepared)
    for _ in range(2):
        with torch.no_grad():
            fresh = separate.control_probs(ctrl)
        separate.discriminator_step(ctrl, fresh)
    separate.main_step(batch, ctrl, separate.control_probs(ctrl))
    a, b = shared.state_dict(), separate.state_dict()
    assert not torch.equal(a["discriminator.0.weight"], start["discriminator.0.weight"])
    assert not torch.equal(
        a["model.heads.jet_classification.net.0.weight"],
        start["model.heads.jet_classification.net.0.weight"],
    )
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_lambda_zero_reproduces_the_baseline(prepared, tmp_path):
    config, root, main, control = prepared
    baseline = tiny(config, "baseline")
    adversarial = copy.deepcopy(baseline)
    adversarial["adversarial"] = {"lambda": 0.0}
    args = (main["train"], main["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    train(part(config, baseline), *args, str(tmp_path / "base"))
    train(
        part(config, adversarial),
        *args,
        str(tmp_path / "adv"),
        control_paths={"train": control["train"], "val": control["val"]},
    )
    a = torch.load(tmp_path / "base" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "adv" / "last.ckpt", weights_only=False)["state_dict"]
    assert any(k.startswith("discriminator.") for k in b)
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, atol=1e-5, rtol=1e-4)


def adversarial_run(prepared, outdir, threshold, **training):
    """A 5-epoch tiny adversarial run gated at ``threshold``: its summary and best.ckpt epoch."""
    config, root, main, control = prepared
    model = tiny(config, "adversarial")
    model["training"].update(max_epochs=5, **training)
    model["adversarial"]["ks_threshold"] = threshold
    args = (main["train"], main["val"], str(root / "norm.yaml"), str(root / "class.yaml"))
    controls = {"train": control["train"], "val": control["val"]}
    summary = train(part(config, model), *args, str(outdir), control_paths=controls)
    return summary, torch.load(outdir / "best.ckpt", weights_only=False)["epoch"]


def test_ks_gate_picks_the_lowest_loss_passing_epoch(prepared, tmp_path):
    free, _ = adversarial_run(prepared, tmp_path / "free", 1.01)  # a K-S distance is <= 1
    ks = [e["val_ks_psig"] for e in free["epochs"]]
    losses = [e["val_loss"] for e in free["epochs"]]
    # early stopping (patience 1) follows the plain loss whatever the gate does
    n_run = next((i + 1 for i in range(1, 5) if losses[i] >= min(losses[:i])), 5)
    lowest = int(np.argmin(losses[:n_run]))
    below = [k for k in ks[:n_run] if k < ks[lowest]]
    assert below, "the lowest-loss epoch has the lowest K-S: no threshold separates them"
    # halfway between: the lowest-loss epoch fails (gate: ks < threshold), another passes
    threshold = (ks[lowest] + max(below)) / 2
    gated, ckpt_epoch = adversarial_run(
        prepared, tmp_path / "gated", threshold, early_stopping={"patience": 1}
    )
    assert len(gated["epochs"]) == n_run
    np.testing.assert_allclose([e["val_loss"] for e in gated["epochs"]], losses[:n_run])
    passing = [e for e in gated["epochs"] if e["val_ks_psig"] < threshold]
    assert [e["val_ks_pass"] for e in gated["epochs"]] == [e in passing for e in gated["epochs"]]
    expected = min(passing, key=lambda e: e["val_loss"])["epoch"]
    assert expected != lowest and not gated["gate_fallback"]
    assert gated["best_epoch"] == expected and ckpt_epoch == expected


def test_ks_gate_falls_back_with_a_warning(prepared, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="hepsnake"):
        summary, ckpt_epoch = adversarial_run(prepared, tmp_path / "m", 1.0e-9)
    assert summary["gate_fallback"] and not any(e["val_ks_pass"] for e in summary["epochs"])
    assert "no epoch passed the K-S gate" in caplog.text
    lowest = min(summary["epochs"], key=lambda e: e["val_loss"])["epoch"]
    assert summary["best_epoch"] == lowest and ckpt_epoch == lowest
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["gate_fallback"] is True
    # the train metrics, summed over the epoch's steps, are logged once per epoch
    with open(tmp_path / "m" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["train_adv"]]
    assert [int(r["epoch"]) for r in rows] == [e["epoch"] for e in summary["epochs"]]
    for row, epoch in zip(rows, summary["epochs"], strict=True):
        assert float(row["train_loss"]) == pytest.approx(epoch["train_loss"])


def film_module(prepared, **film):
    """A tiny FiLM-parameterised module (2 DeepSets layers) with ``film`` settings, eval mode."""
    config, root, _, _ = prepared
    model = tiny(config, "parameterised_film")
    model["model"]["encoder"]["layers"] = 2
    model["model"]["film"].update(film)
    norm = yaml.safe_load((root / "norm.yaml").read_text())
    return build_module(part(config, model), norm, [1, 1, 1]).eval()


def logits_at(module, batch, mass):
    with torch.no_grad():
        return module(dict(batch, params=torch.full_like(batch["params"], mass)))["logits"]


@pytest.mark.parametrize("where", ["input", "encoder", "pooled"])
def test_film_output_follows_the_parameter(where, prepared):
    module = film_module(prepared, where=[where])
    batch = next(iter(H5Batches(prepared[2]["test"], module.spec, 200)))
    ref = logits_at(module, batch, 5.0)
    assert not torch.allclose(ref, logits_at(module, batch, 55.0))  # FiLM is the only path
    if where == "encoder":  # one FiLM net per encoder layer, each of them used
        nets = module.model.film.nets["encoder"]
        assert len(nets) == 2
        for net in nets:
            with torch.no_grad():
                net[-1].bias.add_(0.5)
            out = logits_at(module, batch, 5.0)
            assert not torch.allclose(out, ref)
            ref = out


@pytest.mark.parametrize("options", [{"layer_norm": True}, {"scale": False}, {"bias": False}])
def test_film_options_build_and_run(options, prepared):
    module = film_module(prepared, where=["input", "encoder", "pooled"], **options)
    film = module.model.film
    assert isinstance(film.norms["pooled"], nn.LayerNorm) == bool(options.get("layer_norm"))
    both = options.get("scale", True) and options.get("bias", True)
    assert film.nets["pooled"][-1].out_features == 8 * (2 if both else 1)  # dim 8: γ and/or β
    batch = next(iter(H5Batches(prepared[2]["test"], module.spec, 200)))
    ref = logits_at(module, batch, 5.0)
    assert ref.shape == (200, 3) and torch.isfinite(ref).all()
    assert not torch.allclose(ref, logits_at(module, batch, 55.0))


def test_film_needs_scale_or_bias(prepared):
    with pytest.raises(HepsnakeError, match="scale and bias are both false"):
        film_module(prepared, scale=False, bias=False)
