"""Files that another stage left behind empty, truncated or of the wrong kind: each is one
error line naming that file and what is wrong (a 0-byte norm dict gave ``unexpected
TypeError: 'NoneType' object is not subscriptable``); and a full disk during training names
the model folder (it named a ``/tmp/tmp…`` copy that Lightning stages checkpoints through)."""

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, default_config, prepared_toy

from hepsnake.config import contract, load_model, resolve, write_resolved
from hepsnake.errors import HepsnakeError
from hepsnake.evaluate.predict import predict
from hepsnake.evaluate.stage import evaluate
from hepsnake.prepare.norm import norm_stats
from hepsnake.report.markdown import report
from hepsnake.training.run import train

HEPSNAKE = shutil.which("hepsnake")


def tiny_model(config: dict[str, Any], epochs: int = 1) -> dict[str, Any]:
    """A small baseline model config (``epochs`` epochs, no early stop)."""
    model = load_model(config, "baseline")
    model["model"].update(dim=8, init_nets={"default": {"hidden": [8]}}, head={"hidden": [8]})
    model["training"].update(max_epochs=epochs, batch_size=200, early_stopping=None)
    return model


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every kind of file a stage hands on, made by the real stages on a small toy sample:
    summaries, splits, norm and class dicts, a trained checkpoint, predictions, metrics."""
    root = tmp_path_factory.mktemp("stages")
    base = default_config() | {"model_dir": str(REPO / "config" / "models")}
    config, splits = prepared_toy(root, {"qcd": 600, "bib": 300, "sig": 300}, 4, **base)
    resolved = resolve(config, models={"baseline": tiny_model(config)})
    write_resolved(resolved, root / "resolved.yaml")  # what the rules pass, with a model name
    part = contract(resolved, "train", model="baseline")
    paths = {k: str(root / f"{k}.yaml") for k in ("norm", "class")}
    model = root / "model"
    train(part, splits["train"], splits["val"], paths["norm"], paths["class"], str(model))
    predict("baseline", str(model / "best.ckpt"), splits["test"], str(root / "pred.h5"))
    ev_config = contract(resolved, "evaluate", model="baseline")
    evaluate(
        ev_config,
        str(root / "pred.h5"),
        str(model / "metrics.json"),
        str(root / "metrics.json"),
        str(root / "plots"),
    )
    return {
        "root": root,
        "config": config,
        "part": part,
        "splits": splits,
        "evaluate": ev_config,
        "report": contract(resolved, "report"),
        "resolved": root / "resolved.yaml",
        "norm": contract(resolved, "norm"),
        "files": {
            "norm dict": root / "norm.yaml",
            "class dict": root / "class.yaml",
            "checkpoint": model / "best.ckpt",
            "training split": Path(splits["train"]),
            "predictions file": root / "pred.h5",
            "training metrics.json": model / "metrics.json",
            "evaluate metrics": root / "metrics.json",
            "split summary": root / "summary.json",
            "conversion summary": root / "qcd.json",
        },
    }


def reader(kind: str, run: dict[str, Any], bad: Path, out: Path) -> Callable[[], Any]:
    """The stage call that reads the file of ``kind``, with ``bad`` in its place."""
    files = {k: str(v) for k, v in run["files"].items()} | {kind: str(bad)}
    splits = run["splits"]

    def train_with() -> Any:
        return train(
            run["part"],
            splits["train"],
            splits["val"],
            files["norm dict"],
            files["class dict"],
            str(out / "model"),
        )

    def report_with() -> Any:
        return report(
            run["report"],
            {"baseline": files["evaluate metrics"]},
            {"baseline": files["training metrics.json"]},
            files["split summary"],
            [files["conversion summary"]],
            str(out / "report.md"),
        )

    def evaluate_with() -> Any:
        return evaluate(
            run["evaluate"],
            files["predictions file"],
            files["training metrics.json"],
            str(out / "metrics.json"),
            str(out / "plots"),
        )

    return {
        "norm dict": train_with,
        "class dict": train_with,
        "checkpoint": lambda: predict("baseline", str(bad), splits["test"], str(out / "p.h5")),
        "training split": lambda: norm_stats(
            run["norm"], str(bad), str(out / "n.yaml"), str(out / "c.yaml")
        ),
        "predictions file": evaluate_with,
        "training metrics.json": report_with,
        "evaluate metrics": report_with,
        "split summary": report_with,
        "conversion summary": report_with,
    }[kind]


# what a mixed-up file is, for each kind: another stage's file
WRONG = {
    "norm dict": "class dict",
    "class dict": "norm dict",
    "checkpoint": "norm dict",
    "training split": "predictions file",
    "predictions file": "training split",
    "training metrics.json": "evaluate metrics",
    "evaluate metrics": "training metrics.json",
    "split summary": "conversion summary",
    "conversion summary": "split summary",
}
# what the error says is wrong, per defect
SAYS = {
    "empty": r"empty file \(0 bytes\), not an? {kind}: rerun the stage that writes it$",
    "truncated": r"(truncated|not an? |not a readable HDF5 file \(.*truncated)",
    "wrong kind": r"(not an? |no dataset )",
}


def damaged(run: dict[str, Any], kind: str, defect: str, folder: Path) -> Path:
    """A copy of the file of ``kind`` in ``folder``: empty, cut in half, or another stage's."""
    good = run["files"][kind]
    bad = folder / f"bad{good.suffix}"
    if defect == "empty":
        bad.write_bytes(b"")
    elif defect == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        shutil.copyfile(run["files"][WRONG[kind]], bad)
    return bad


@pytest.mark.parametrize("defect", list(SAYS))
@pytest.mark.parametrize("kind", list(WRONG))
def test_a_bad_file_is_one_line_naming_it(run, kind, defect, tmp_path) -> None:
    bad = damaged(run, kind, defect, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(HepsnakeError) as err:
        reader(kind, run, bad, out)()
    message = str(err.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message, message
    assert re.match(SAYS[defect].format(kind=kind), message.removeprefix(f"{bad}: ")), message
    assert not (out / "model" / "best.ckpt").exists() and not (out / "report.md").exists()


def test_zero_byte_norm_dict_from_the_command_line(run, tmp_path) -> None:
    """The issue's case, as a user meets it: one line, no TypeError."""
    empty = tmp_path / "norm_dict.yaml"
    empty.write_bytes(b"")
    splits = run["splits"]
    proc = subprocess.run(
        [
            *(HEPSNAKE, "train", "--config", str(run["resolved"]), "--model", "baseline"),
            *("--train", splits["train"], "--val", splits["val"], "--norm", str(empty)),
            *("--class-dict", str(run["files"]["class dict"]), "--outdir", str(tmp_path / "m")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"hepsnake train: error: {empty}: empty file (0 bytes), not a norm dict: rerun the"
        " stage that writes it"
    ]


def can_mount_a_small_disk() -> bool:
    """Whether a user namespace may mount a tmpfs here (``unshare -rm``)."""
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_a_small_disk(), reason="no user-namespace mounts here")
def test_full_disk_during_training_names_the_model_folder(run, tmp_path) -> None:
    """A real full disk: a 48 KiB tmpfs on results/models, /tmp elsewhere with room (as on
    a batch node). The checkpoint save fails; the error names results/models/<model>, not
    the /tmp copy Lightning used to stage it through."""
    models = tmp_path / "results" / "models"
    models.mkdir(parents=True)
    splits = run["splits"]
    train_args = [HEPSNAKE, "train", "--config", str(run["resolved"]), "--model", "baseline"]
    train_args += ["--train", splits["train"], "--val", splits["val"]]
    train_args += ["--norm", str(run["files"]["norm dict"])]
    train_args += ["--class-dict", str(run["files"]["class dict"])]
    train_args += ["--outdir", "results/models/baseline"]
    script = 'mount -t tmpfs -o size=48k tmpfs results/models && exec "$@"'
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", *train_args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("hepsnake train: error: results/models/baseline/"), error
    assert error.endswith(": cannot write: No space left on device (ENOSPC)"), error
    assert "/tmp" not in error and "Traceback" not in proc.stderr
