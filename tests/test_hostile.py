"""Hostile inputs (issue 12): duplicated files (train/test leak), truth copied under another
name, a full disk or unwritable output, credentials in sample URLs."""

import copy
import errno
import json
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, default_config, prepared_toy, stage

from hepsnake.config import load_model, resolve, validate, write_resolved
from hepsnake.config.contracts import inputs
from hepsnake.convert.convert import convert
from hepsnake.errors import HepsnakeError
from hepsnake.io import atomic
from hepsnake.io.atomic import WriteError, atomic_path, write_errno
from hepsnake.names import input_fields
from hepsnake.prepare.guard import check_input_values
from hepsnake.prepare.norm import norm_stats
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.prepared import MASS_GRID, convert_samples
from hepsnake.simulate.toy import simulate, write_root
from hepsnake.training.callbacks import AtomicModelCheckpoint, checkpoint_path

HEPSNAKE = shutil.which("hepsnake")
TOY = {"qcd": ("qcd", None, 3000), "bib": ("bib", None, 1500), "sig": ("sig", 16.0, 1500)}


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> Path:
    """Toy ROOT files ``qcd.root``, ``bib.root``, ``sig.root`` (mS 16)."""
    root = tmp_path_factory.mktemp("hostile")
    for name, (process, mass, n) in TOY.items():
        write_root(simulate(name, process, n, 5, mass=mass, **MASS_GRID), root / f"{name}.root")
    return root


def sample(name: str, *files: Path, label: str | None = None) -> dict:
    """An inline toy sample of ``files``, labelled ``label`` (default: its name's process)."""
    entry = {"name": name, "files": [str(f) for f in files], "reader": "toy"}
    entry["label"] = label or TOY[name][0]
    if TOY.get(name, (None, None))[1]:
        entry["params"] = {"mS": TOY[name][1]}
    return entry


def toy_config(samples: list[dict], **prepare: object) -> dict:
    """The shipped config with ``samples`` and ``prepare`` overrides, validated."""
    config = default_config() | {"samples": samples}
    config["prepare"] = {**config.get("prepare", {}), **prepare}
    return validate(config)


def base_samples(roots: Path) -> list[dict]:
    return [sample(n, roots / f"{n}.root") for n in TOY]


def run_split(config: dict, out: Path) -> dict[str, np.ndarray]:
    """Convert every sample of ``config`` and split them into ``out``; the jets per split."""
    convert_samples(resolve(config), out)
    outputs = {s: str(out / f"{s}.h5") for s in SPLITS}
    names = [s["name"] for s in config["samples"]]
    inputs = [str(out / f"{n}.h5") for n in names]
    split(stage(config, "split"), inputs, outputs, str(out / "summary.json"))
    jets = {}
    for s in SPLITS:
        with h5py.File(outputs[s]) as h5:
            jets[s] = h5["jets"][:]
    return jets


def event_ids(jets: np.ndarray) -> list[tuple]:
    """An identity per jet that does not depend on its sample: event, kinematics."""
    return list(zip(jets["eventNumber"], jets["pt"], jets["eta"], strict=True))


# -- item 4: the same file twice -------------------------------------------------------------


def test_same_root_file_in_two_samples_is_an_error(roots):
    samples = [*base_samples(roots), sample("qcd2", roots / "qcd.root", label="qcd")]
    with pytest.raises(HepsnakeError) as err:
        toy_config(samples)
    message = str(err.value)
    assert message.startswith("config: samples: qcd2: ")
    assert f"'{roots / 'qcd.root'}'" in message
    assert "in samples 'qcd' and 'qcd2'" in message and "prepare.deduplicate" in message


def test_same_file_twice_in_one_sample_is_an_error(roots):
    """Twice through a glob that also matches the listed file (the path check resolves both)."""
    samples = base_samples(roots)
    samples[0]["files"] = [str(roots / "qcd.root"), str(roots / "q*.root")]
    with pytest.raises(HepsnakeError, match=r"twice in sample 'qcd'"):
        toy_config(samples)


def test_copied_file_is_caught_by_its_checksum_at_split(roots, tmp_path):
    """A copy under another name passes the config check; its checksum stops the split."""
    copy_path = tmp_path / "copy_of_qcd.root"
    shutil.copyfile(roots / "qcd.root", copy_path)
    config = toy_config([*base_samples(roots), sample("qcd2", copy_path, label="qcd")])
    with pytest.raises(HepsnakeError) as err:
        run_split(config, tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'qcd2.h5'}: input file '{copy_path}' (xxh3 ")
    assert "in samples 'qcd' and 'qcd2'" in message
    assert not any((tmp_path / f"{s}.h5").exists() for s in SPLITS)


@pytest.mark.parametrize("where", ["two samples", "one sample"])
def test_deduplicate_keeps_one_copy_no_event_in_two_splits(where, roots, tmp_path):
    clean = run_split(toy_config(base_samples(roots)), tmp_path / "clean")
    samples = base_samples(roots)
    if where == "two samples":
        samples.append(sample("qcd2", roots / "qcd.root", label="qcd"))
    else:
        samples[0]["files"] *= 2
    dup = run_split(toy_config(samples, deduplicate=True), tmp_path / "dup")
    seen = [j for s in SPLITS for j in event_ids(dup[s])]
    assert len(seen) == len(set(seen))  # no jet twice, in one split or across two
    for s in SPLITS:  # the first copy kept: the splits of the run without duplicates
        assert sorted(event_ids(dup[s])) == sorted(event_ids(clean[s]))


# -- item 5: truth under another name --------------------------------------------------------


def leak_sections() -> dict:
    """The shipped readers and inputs, with the toy reader mapping ``score: truth_logp_sig``
    and ``score`` a jet input."""
    config = default_config()
    readers = copy.deepcopy(config["readers"])
    readers["toy"]["jets"]["score"] = "truth_logp_sig"
    inputs = copy.deepcopy(config["inputs"])
    inputs["variables"]["jets"].append("score")
    return {"readers": readers, "inputs": inputs}


def test_truth_copied_under_another_name_is_refused(tmp_path):
    with pytest.raises(HepsnakeError) as err:
        prepared_toy(tmp_path, {"qcd": 1500, "bib": 800, "sig": 800}, 7, **leak_sections())
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'train.h5'}: truth leak: input 'jets.score' equals ")
    assert "truth column 'truth_logp_sig'" in message and "\n" not in message
    assert not (tmp_path / "norm.yaml").exists()


def test_ordinary_inputs_pass_the_value_guard(tmp_path):
    config, outputs = prepared_toy(tmp_path, {"qcd": 1500, "bib": 800, "sig": 800}, 7)
    with h5py.File(outputs["train"]) as h5:
        assert "truth_logp_sig" in h5["jets"].dtype.names
    assert yaml.safe_load((tmp_path / "norm.yaml").read_text())["jets"].keys() == set(
        input_fields(inputs(config["inputs"]))["jets"]
    )


@pytest.mark.parametrize(
    ("transform", "refused"),
    [
        (lambda t: t, True),
        (lambda t: np.exp(t / 10), True),  # monotone: same ranks
        (lambda t: -3 * t + 1, True),  # decreasing
        (lambda t: t + np.random.default_rng(0).normal(0, 2 * t.std(), t.size), False),
    ],
    ids=["copy", "exp", "decreasing", "noisy"],
)
def test_value_guard_rank_correlation(transform, refused):
    rng = np.random.default_rng(1)
    table = np.zeros(4000, dtype=[("x", "f4"), ("truth_p", "f4"), ("flavour_label", "i4")])
    table["truth_p"] = rng.normal(size=4000)
    table["flavour_label"] = rng.integers(0, 3, 4000)
    table["x"] = transform(table["truth_p"].astype(np.float64))
    plain = {"variables": {"jets": ["x"]}, "truth": []}
    if refused:
        with pytest.raises(HepsnakeError, match=r"input 'jets\.x' equals truth column 'truth_p'"):
            check_input_values(table, "jets", inputs(plain), None, "train.h5")
        allowed = inputs(plain | {"allow_truth_inputs": True})
        check_input_values(table, "jets", allowed, None, "t.h5")
    else:
        check_input_values(table, "jets", inputs(plain), None, "train.h5")


def test_value_guard_checks_the_label_map_variable():
    table = np.zeros(100, dtype=[("flavour", "f4"), ("PartonID", "i4")])
    table["PartonID"] = np.arange(100) % 3
    table["flavour"] = table["PartonID"] * 2.0
    plain = {"variables": {"jets": ["flavour"]}, "truth": []}
    check_input_values(table, "jets", inputs(plain), None, "t.h5")  # PartonID: not truth*
    with pytest.raises(HepsnakeError, match="truth column 'PartonID'"):
        check_input_values(table, "jets", inputs(plain), "PartonID", "t.h5")
    with pytest.raises(HepsnakeError, match="truth column 'PartonID'"):
        check_input_values(table, "jets", inputs(plain | {"truth": ["Parton*"]}), None, "t.h5")


# -- item 7: a full disk, an unwritable output -----------------------------------------------


def limited(size: int) -> None:
    """In the child: files may not grow beyond ``size`` bytes (EFBIG, as a full disk gives
    ENOSPC); SIGXFSZ ignored, so the write fails instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def hepsnake(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    """Run ``hepsnake ARGS`` (file size limited to ``fsize`` bytes)."""
    return subprocess.run(
        [HEPSNAKE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=(lambda: limited(fsize)) if fsize else None,
    )


def one_error_line(proc: subprocess.CompletedProcess, verb: str) -> str:
    """The run failed with exit 1 (not a crash) and printed exactly one line: the error."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hepsnake {verb}: error: "), proc.stderr
    return lines[0].removeprefix(f"hepsnake {verb}: error: ")


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def stage_files(roots, tmp_path_factory) -> tuple[Path, Path, Path]:
    """A config file, converted samples and prepared splits of the toy files."""
    root = tmp_path_factory.mktemp("stages")
    config_path = root / "config.yaml"
    config = default_config() | {"samples": base_samples(roots)}
    config_path.write_text(yaml.safe_dump(config))
    conv = root / "h5"
    conv.mkdir()
    convert_samples(resolve(validate(config)), conv)
    prepared = root / "prepared"
    names = [str(conv / f"{n}.h5") for n in TOY]
    outputs = {s: str(prepared / f"{s}.h5") for s in SPLITS}
    split(stage(validate(config), "split"), names, outputs, str(prepared / "summary.json"))
    return config_path, conv, prepared


def stage_args(verb: str, stage_files: tuple[Path, Path, Path], out: Path) -> list[str]:
    config, conv, prepared = stage_files
    if verb == "convert":
        io = ["--sample", "qcd", "--output", f"{out}/qcd.h5", "--summary", f"{out}/qcd.json"]
        return ["convert", "--config", str(config), "--no-progress", *io]
    if verb == "split":
        outputs = [f"{out}/{s}.h5" for s in SPLITS]
        inputs = [str(conv / f"{n}.h5") for n in TOY]
        io = ["--inputs", *inputs, "--outputs", *outputs, "--summary", f"{out}/summary.json"]
        return ["split", "--config", str(config), *io]
    io = ["--norm", f"{out}/norm.yaml", "--class-dict", f"{out}/class.yaml"]
    return ["norm", "--config", str(config), "--train", str(prepared / "train.h5"), *io]


@pytest.mark.parametrize(
    ("verb", "fsize"),
    [
        ("convert", 100_000),
        ("convert", 1_000_000),
        ("split", 100_000),
        ("split", 1_000_000),
        ("norm", 100),  # its outputs are a few hundred bytes
    ],
)
def test_disk_full_is_one_line_no_crash_no_partial_file(verb, fsize, stage_files, tmp_path):
    """Convert segfaulted after HDF5's write error; split and norm printed tracebacks."""
    out = tmp_path / "out"
    proc = hepsnake(*stage_args(verb, stage_files, out), fsize=fsize)
    error = one_error_line(proc, verb)
    assert error.endswith(": cannot write: File too large (EFBIG)"), error
    assert error.removesuffix(": cannot write: File too large (EFBIG)").startswith(f"{out}/")
    assert everything_under(out) == []  # no output, no temporary
    assert hepsnake(*stage_args(verb, stage_files, out)).returncode == 0  # room again: it runs


def test_output_under_a_regular_file_is_one_line(stage_files, tmp_path):
    """ENOTDIR (as root, permissions do not stop a write: a file where a folder should be)."""
    (tmp_path / "blocker").write_text("")
    proc = hepsnake(*stage_args("convert", stage_files, tmp_path / "blocker" / "h5"))
    error = one_error_line(proc, "convert")
    assert error.endswith("cannot write: Not a directory (ENOTDIR)"), error


def test_truncated_train_split_is_one_line(stage_files, tmp_path):
    """An HDF5 read error (a truncated file) names the file: it was a traceback."""
    config, _, prepared = stage_files
    truncated = tmp_path / "train.h5"
    truncated.write_bytes((prepared / "train.h5").read_bytes()[:5000])
    args = ["norm", "--config", str(config), "--train", str(truncated)]
    proc = hepsnake(*args, "--norm", f"{tmp_path}/n.yaml", "--class-dict", f"{tmp_path}/c.yaml")
    error = one_error_line(proc, "norm")
    assert error.startswith(f"{truncated}: not a readable HDF5 file (") and "truncated" in error


def test_unexplained_os_errors_name_their_file():
    hdf5 = OSError(errno.ENOENT, "Unable to open file (unable to open file: name = '/x.h5', ...)")
    assert str(atomic.os_error(hdf5)).startswith("/x.h5: Unable to open file")
    full = atomic.os_error(OSError(errno.ENOSPC, "No space left on device", "/d/o.csv"))
    assert isinstance(full, WriteError) and str(full) == "/d/o.csv: No space left on device"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), errno.EACCES),
        (RuntimeError("Can't decrement id ref count (file write failed: errno = 28, ...)"), 28),
        (OSError(errno.ENOENT, "No such file or directory"), None),
        (RuntimeError("shapes differ"), None),
    ],
)
def test_write_errno(exc, code):
    assert write_errno(exc) == code


def test_disk_full_inside_convert_names_the_output(roots, tmp_path, monkeypatch):
    """ENOSPC itself (raised where HDF5 appends): one error naming the output, nothing left."""

    def full(self: object, name: str, table: np.ndarray) -> None:
        where = f"filename = '{self.h5.filename}', errno = 28"
        raise OSError(errno.ENOSPC, f"Can't write data (file write failed: {where}, ...)")

    monkeypatch.setattr("hepsnake.io.h5.TableWriter.append", full)
    config = toy_config(base_samples(roots))
    with pytest.raises(WriteError) as err:
        c = stage(config, "convert", sample="qcd")
        convert(c, tmp_path / "qcd.h5", tmp_path / "qcd.json", show_progress=False)
    assert (
        str(err.value) == f"{tmp_path / 'qcd.h5'}: cannot write: No space left on device (ENOSPC)"
    )
    assert everything_under(tmp_path) == []


def test_killed_write_leaves_its_folder_for_the_next_run(tmp_path):
    """What a kill -9 leaves (the per-output folder) is removed when that output is written."""
    target = tmp_path / "out.json"
    left = atomic.scratch_dir(target)
    left.mkdir()
    (left / "out.json").write_text("partial")
    (left / ".split-abc").mkdir()
    atomic.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert everything_under(tmp_path) == ["out.json"]
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ValueError
    assert everything_under(tmp_path) == ["out.json"]


def test_train_disk_full_leaves_no_truncated_checkpoint(stage_files, tmp_path):
    """A real training run whose checkpoint save fails: one line, no partial checkpoint."""
    config_path, _, prepared = stage_files
    config = validate(yaml.safe_load(config_path.read_text()))
    norm_stats(
        stage(config, "norm"),
        str(prepared / "train.h5"),
        str(tmp_path / "n.yaml"),
        str(tmp_path / "c.yaml"),
    )
    model = load_model(config | {"model_dir": str(REPO / "config" / "models")}, "baseline")
    model["model"].update(dim=8, init_nets={"default": {"hidden": [8]}}, head={"hidden": [8]})
    model["training"].update(max_epochs=1, batch_size=500, early_stopping=None)
    out = tmp_path / "m"
    resolved = tmp_path / "resolved.yaml"  # what the rule passes: the resolved config, a name
    write_resolved(resolve(config, models={"m": model}), resolved)
    proc = hepsnake(
        *("train", "--config", str(resolved), "--model", "m"),
        *("--train", str(prepared / "train.h5"), "--val", str(prepared / "val.h5")),
        *("--norm", str(tmp_path / "n.yaml"), "--class-dict", str(tmp_path / "c.yaml")),
        *("--outdir", str(out)),
        fsize=20_000,  # below a checkpoint's size
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"hepsnake train: error: {out}/.work/"), error
    assert error.endswith(".ckpt: cannot write: File too large (EFBIG)"), error
    assert "Traceback" not in proc.stderr
    assert not list(out.rglob("*.ckpt")) and not list(out.rglob("*.tmp.d"))


class FakeTrainer:
    """What the checkpoint save path uses of a Lightning trainer; ``fail`` after half a file."""

    is_global_zero = True
    global_step = 7
    loggers: tuple = ()

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def save_checkpoint(self, path: str, weights_only: bool = False) -> None:
        torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
        if self.fail:
            Path(path).write_bytes(Path(path).read_bytes()[:32768])
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")


@pytest.mark.parametrize("fail", [False, True])
def test_checkpoint_saves_are_atomic(fail, tmp_path):
    """A failed best.ckpt save leaves no truncated file (a 32 KiB one stayed); a good one is
    complete and recorded under its own name."""
    best = AtomicModelCheckpoint(dirpath=tmp_path, filename="best")
    target = str(tmp_path / "best.ckpt")
    if fail:
        with pytest.raises(HepsnakeError, match=r"best\.ckpt: cannot write checkpoint: "):
            best._save_checkpoint(FakeTrainer(fail=True), target)
        assert everything_under(tmp_path) == []
    else:
        best._save_checkpoint(FakeTrainer(fail=False), target)
        assert best._last_checkpoint_saved == target
        assert torch.load(target, weights_only=True)["state_dict"]["w"].shape == (1000,)
        assert everything_under(tmp_path) == ["best.ckpt"]


def test_other_ranks_write_nothing(tmp_path):
    trainer = FakeTrainer(fail=False)
    trainer.is_global_zero = False
    with checkpoint_path(trainer, tmp_path / "resume.ckpt") as path:
        assert path == str(tmp_path / "resume.ckpt")
    assert everything_under(tmp_path) == []


# -- item 10: credentials in sample URLs -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("root://user:pw9871@eosuser.cern.ch//eos/f.root", "pw9871"),
        ("s3://AKIAKEY:s3cr3tValue@bucket/f.root", "s3cr3tValue"),
        ("https://u:p4ssw0rd@host.example/f.root", "p4ssw0rd"),
        ("root://eosuser.cern.ch//eos/f.root?authz=tok3n123", "tok3n123"),
        ("https://b.s3.amazonaws.com/f.root?X-Amz-Signature=5ig", "5ig"),
    ],
)
def test_url_with_credentials_is_refused(url, secret, roots):
    samples = [*base_samples(roots), {"name": "remote", "files": [url], "reader": "toy"}]
    with pytest.raises(HepsnakeError) as err:
        toy_config(samples)
    message = str(err.value)
    assert message.startswith("config: samples: remote: files: '")
    assert secret not in message and "\n" not in message
    assert "AWS_ACCESS_KEY_ID" in message and "config/README.md" in message


def test_credentials_refused_before_snakemake_sees_them(roots, tmp_path):
    """Through the CLI too (what ``snakemake`` runs first: the config load)."""
    config = default_config() | {"samples": base_samples(roots)}
    config["samples"].append(
        {"name": "r", "files": ["s3://KEY:verysecret@b/f.root"], "reader": "toy"}
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = hepsnake(*stage_args("convert", (path, tmp_path, tmp_path), tmp_path / "o"))
    assert "verysecret" not in proc.stderr + proc.stdout
    assert "embeds a password" in one_error_line(proc, "convert")


def test_snakemake_never_records_url_credentials(tmp_path):
    """A sheet row with a secret URL: Snakemake stops at the config, and the secret is in
    nothing it printed or wrote (.snakemake/ metadata and logs, results/)."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    sheet = tmp_path / "config" / "samples.tsv"
    secret = "topSecretValue9"
    sheet.write_text(sheet.read_text() + f"remote\ts3://AKIAX:{secret}@b/f.root\ttoy\n")
    exe = shutil.which("snakemake")
    proc = subprocess.run(
        [exe, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--cores", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "config: samples: remote: files: 's3://***@b/f.root' embeds a password" in proc.stderr
    assert secret not in proc.stdout + proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != sheet]
    assert not [p for p in written if secret.encode() in p.read_bytes()]


def test_url_without_secret_passes(roots):
    samples = [*base_samples(roots), {"name": "r", "files": [], "reader": "toy"}]
    samples[-1]["files"] = ["root://alice@eosuser.cern.ch//eos/f.root", "s3://bucket/a.root"]
    assert toy_config(samples)["samples"][-1]["files"][0].startswith("root://alice@")
