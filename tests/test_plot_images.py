"""Plot regression: the key plots of the evaluate stage, drawn from a fixed tiny input, against
reference images kept in tests/reference_images (matplotlib's image comparison, RMS tolerance).

After an intended change to the plots, redraw the references and look at them before committing:

    HEPSNAKE_UPDATE_REFERENCE_IMAGES=1 pytest -n 0 tests/test_plot_images.py

The style is mplhep's with its own fonts (TeX Gyre Heros, shipped in mplhep-data), so the
images do not depend on the fonts a machine has; a second drawing must give the same bytes.
"""

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import model_spec
from matplotlib import font_manager
from matplotlib.testing.compare import compare_images

from hepsnake.config import build
from hepsnake.config.contracts import EvaluateContract, EvaluateSpec, Scan, section
from hepsnake.evaluate.stage import evaluate
from hepsnake.io.atomic import write_json
from hepsnake.names import prob_column
from hepsnake.paths import figure_files

REFERENCE = Path(__file__).parent / "reference_images"
UPDATE = "HEPSNAKE_UPDATE_REFERENCE_IMAGES"
TOLERANCE = 2.0  # RMS of the pixel differences (0-255): a moved curve or label fails
KEY_PLOTS = ("roc", "efficiency_pt", "control", "training")
CLASSES = ["qcd", "bib", "sig"]
MEANS = {"qcd": (0.0, 0.0), "bib": (1.5, -1.0), "sig": (1.5, 1.5)}  # 2-D Gaussians, unit width
EVALUATE = {
    "signal": "sig",
    "signal_label": "signal",
    "working_points": None,
    "discriminant": {"type": "fractions"},
    "fractions": None,
    "pt_bins": [20, 50, 100, 400],
    "efficiency_variables": {},
    "reference_taggers": {"cut_x": {"score": "x"}},
    "ratio_reference": None,
    "physical_weights": None,
    "roc_weights": "physical",  # the bands and error bars from weighted statistics
    "min_class_jets": 100,
    "constant_fraction": 0.1,
    "plot_style": None,
}


def log_likelihoods(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The exact log-likelihood of each class at (x, y): the truth the Bayes-optimal curve uses."""
    return {c: -0.5 * ((x - mx) ** 2 + (y - my) ** 2) for c, (mx, my) in MEANS.items()}


def fixed_jets(n: int, seed: int, model: str) -> np.ndarray:
    """``n`` jets per class from 2-D Gaussians, weighted, with pt, the model's (blurred)
    posterior, a one-variable reference score ``x`` and the exact log-likelihoods."""
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(len(CLASSES)), n)
    means = np.array([MEANS[c] for c in CLASSES])[label]
    x, y = (means + rng.normal(0, 1, (len(label), 2))).T
    truth = log_likelihoods(x, y)
    blurred = np.stack([truth[c] + rng.normal(0, 0.6, len(label)) for c in CLASSES], axis=1)
    probs = np.exp(blurred - blurred.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    fields = ["weight", "pt", "x", *(f"truth_logp_{c}" for c in CLASSES)]
    fields += [prob_column(model, c) for c in CLASSES]
    jets = np.zeros(len(label), dtype=[("flavour_label", "i4")] + [(f, "f4") for f in fields])
    jets["flavour_label"] = label
    jets["weight"] = rng.uniform(0.5, 1.5, len(label))
    jets["pt"] = 20 * np.exp(rng.exponential(1.0, len(label)))
    jets["x"] = x
    for i, c in enumerate(CLASSES):
        jets[f"truth_logp_{c}"] = truth[c]
        jets[prob_column(model, c)] = probs[:, i]
    return jets


def fixed_control(n: int, seed: int, model: str) -> np.ndarray:
    """Control jets: MC (weighted) and data, the data slightly more signal-like."""
    rng = np.random.default_rng(seed)
    is_data = np.arange(2 * n) >= n
    columns = [prob_column(model, c) for c in CLASSES]
    dtype = [("is_data", "?"), ("weight", "f4")] + [(c, "f4") for c in columns]
    jets = np.zeros(2 * n, dtype=dtype)
    jets["is_data"] = is_data
    jets["weight"] = np.where(is_data, 1.0, rng.uniform(0.5, 1.5, 2 * n))
    signal = rng.beta(2 + is_data * 0.3, 5, 2 * n)
    jets[columns[2]], jets[columns[1]] = signal, (1 - signal) / 3
    jets[columns[0]] = 1 - signal - jets[columns[1]]
    return jets


def fixed_history(path: Path) -> None:
    """An adversarial model's training history: losses, accuracies, adversary losses, K-S."""
    epochs = [
        {
            "epoch": e,
            "train_loss": 1.0 / (e + 1) + 0.3,
            "val_loss": 1.0 / (e + 1) + 0.35 + 0.01 * max(0, e - 5),
            "train_acc": 0.5 + 0.03 * e,
            "val_acc": 0.48 + 0.03 * e,
            "train_adv": 0.69 - 0.01 * e,
            "val_adv": 0.70 - 0.01 * e,
            "train_disc": 0.68 + 0.005 * e,
            "val_ks_psig": 0.1 / (e + 1),
            "val_ks_psig_pt20_50": 0.2,
            "val_ks_pass": 1.0,
        }
        for e in range(10)
    ]
    write_json(
        path, {"epochs": epochs, "best_epoch": 5, "monitor": "val_loss_gated", "train_seconds": 1}
    )


def draw(root: Path) -> Path:
    """The evaluate stage of model ``m`` on the fixed input under ``root``; its plot folder."""
    with h5py.File(root / "pred.h5", "w") as h5:
        h5["jets"] = fixed_jets(600, 1, "m")
        h5["jets"].attrs["class_names"] = CLASSES
        h5["jets"].attrs["energy_unit"] = "GeV"
        h5["control_jets"] = fixed_control(800, 2, "m")
    fixed_history(root / "training.json")
    plots = root / "plots"
    plots.mkdir()
    # the evaluate contract of a jet classifier without parameters (the schema's defaults)
    config = EvaluateContract(
        model="m",
        class_names=tuple(CLASSES),
        evaluate=build(EvaluateSpec, section("properties/evaluate", EVALUATE, "evaluate")),
        parameters=Scan(names=(), train={}),
        tasks=model_spec({}).tasks,
    )
    evaluate(
        config,
        str(root / "pred.h5"),
        str(root / "training.json"),
        str(root / "m.json"),
        str(plots),
    )
    return plots


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return draw(tmp_path_factory.mktemp("images"))


@pytest.mark.parametrize("name", KEY_PLOTS)
def test_plot_matches_its_reference_image(drawn: Path, name: str) -> None:
    actual, expected = drawn / f"{name}.png", REFERENCE / f"{name}.png"
    if os.environ.get(UPDATE) == "1":
        REFERENCE.mkdir(exist_ok=True)
        shutil.copyfile(actual, expected)
    assert expected.is_file(), f"no reference image {expected}: run {UPDATE}=1 pytest {__file__}"
    # None when equal within the tolerance; else the RMS, with a diff image beside `actual`
    assert compare_images(str(expected), str(actual), tol=TOLERANCE) is None


def test_a_second_drawing_gives_the_same_files(drawn: Path, tmp_path: Path) -> None:
    """Same input, same bytes: PNG and PDF (no time stamps), so a reference image only
    changes when a plot does."""
    again = draw(tmp_path)
    for name in KEY_PLOTS:
        for path in figure_files(drawn / f"{name}.png"):
            assert Path(path).read_bytes() == (again / Path(path).name).read_bytes(), path


def test_every_plot_is_also_a_pdf(drawn: Path) -> None:
    # not the diff images of a failed comparison
    pngs = sorted(p for p in drawn.glob("*.png") if not p.stem.endswith("-failed-diff"))
    assert {p.stem for p in pngs} >= set(KEY_PLOTS)
    for png in pngs:
        pdf = png.with_suffix(".pdf")
        assert pdf.read_bytes().startswith(b"%PDF-"), pdf


def test_the_plots_use_the_fonts_mplhep_ships(drawn: Path) -> None:
    """The sans-serif font is mplhep-data's TeX Gyre Heros, not whatever the machine has."""
    import mplhep_data

    font = font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))
    assert "TeX Gyre Heros" in font_manager.get_font(font).family_name
    assert Path(font).is_relative_to(Path(mplhep_data.__file__).parent), font
