"""Config mistakes that surfaced only after convert and split had run are caught when the DAG
is built: ``snakemake -n`` fails with one line naming the sample or file and the missing
branch or variable, opening only the first file of each sample (for its branch list)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import skhep_testdata
import yaml
from conftest import snakemake

from hepsnake.simulate.prepared import MASS_GRID
from hepsnake.simulate.toy import simulate, write_root

HEPSNAKE = shutil.which("hepsnake")
TOY = {"qcd": ("qcd", None), "bib": ("bib", None), "sig": ("sig", 16.0)}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small toy files, and ``renamed.root``: qcd with its truth branch renamed."""
    root = tmp_path_factory.mktemp("preflight")
    for name, (process, mass) in TOY.items():
        branches = simulate(name, process, 200, 7, mass=mass, **MASS_GRID)
        write_root(branches, root / f"{name}.root")
        if name == "qcd":
            branches["truth_logp_QCD"] = branches.pop("truth_logp_qcd")
            write_root(branches, root / "renamed.root")
    return root


def samples(roots: Path, qcd_files: list[Path] | None = None, label: bool = True) -> list[dict]:
    """The three toy samples, qcd read from ``qcd_files`` (default its own file)."""
    out = []
    for name, (process, mass) in TOY.items():
        files = qcd_files if name == "qcd" and qcd_files else [roots / f"{name}.root"]
        sample = {"name": name, "files": [str(f) for f in files], "reader": "toy"}
        if label or name != "qcd":
            sample["label"] = process
        if mass:
            sample["params"] = {"mS": mass}
        out.append(sample)
    return out


def dry_run(workdir: Path, roots: Path, **config: object) -> tuple[int, list[str]]:
    """``snakemake -n`` with the shipped config, ``config`` on top (toy samples from ``roots``
    unless given, model baseline): its exit code and its error lines."""
    body = {"extends": "config/config.yaml", "models": ["baseline"]}
    body |= {"samples": samples(roots)} | config
    (workdir / "my.yaml").write_text(yaml.safe_dump(body))
    proc = snakemake(workdir, "-n", "--configfile", "my.yaml", check=False)
    return proc.returncode, [line for line in proc.stderr.splitlines() if "error" in line]


def test_a_good_config_passes(workdir, roots) -> None:
    assert dry_run(workdir, roots) == (0, [])


def test_an_input_no_reader_maps(workdir, roots) -> None:
    inputs = {"variables": {"jets": ["pt", "eta", "jet_mass"]}}
    code, errors = dry_run(workdir, roots, inputs=inputs)
    assert code == 1
    assert errors == [
        "hepsnake: error: config: inputs/variables/jets/jet_mass: no variable 'jet_mass' in"
        " 'jets' of sample 'qcd': reader 'toy' maps pt, eta, phi, log_ratio, time, width,"
        " eventNumber, mcEventWeight, truth_logp_qcd, truth_logp_sig, truth_logp_bib,"
        " truth_logp_sig_mS5, truth_logp_sig_mS16, truth_logp_sig_mS40, truth_logp_sig_mS55"
    ]


def test_a_cut_on_an_unknown_variable(workdir, roots) -> None:
    code, errors = dry_run(workdir, roots, convert={"cuts": ["pt > 20", "ptt < 500"]})
    assert code == 1
    assert errors == [
        f"hepsnake: error: {roots / 'qcd.root'} (sample 'qcd'): cut 'ptt < 500' uses unknown"
        " jet variable 'ptt' (neither a jet variable of reader 'toy' nor a branch of the file)"
    ]


def test_a_cut_on_a_raw_branch_passes(workdir, roots) -> None:
    """A branch no jet variable maps is a valid cut name (read for the cut)."""
    assert dry_run(workdir, roots, convert={"cuts": ["jet_pt > 20"]}) == (0, [])


def test_a_renamed_truth_branch(workdir, roots) -> None:
    code, errors = dry_run(workdir, roots, samples=samples(roots, [roots / "renamed.root"]))
    assert code == 1
    assert errors == [
        f"hepsnake: error: {roots / 'renamed.root'} (sample 'qcd'): missing branch"
        " 'truth_logp_qcd' in 'jets'"
    ]


def test_a_label_map_variable_no_reader_maps(workdir, roots) -> None:
    label_map = {"variable": "truth_flavour", "map": {"qcd": [0], "sig": [1], "bib": [2]}}
    config = {"samples": samples(roots, label=False), "prepare": {"label_map": label_map}}
    code, errors = dry_run(workdir, roots, **config)
    assert code == 1
    assert errors[0].startswith(
        "hepsnake: error: config: prepare/label_map/variable: 'truth_flavour' is no jet"
        " variable of sample 'qcd': reader 'toy' maps pt, eta,"
    )


def test_only_the_first_file_of_a_sample_is_opened(workdir, roots, tmp_path) -> None:
    """Two 0-byte files after a good one: not opened when the DAG is built (one open per
    sample); first in the list, the bad file is named."""
    empty = [tmp_path / "empty1.root", tmp_path / "empty2.root"]
    for path in empty:
        path.write_bytes(b"")
    good = roots / "qcd.root"
    assert dry_run(workdir, roots, samples=samples(roots, [good, *empty])) == (0, [])
    code, errors = dry_run(workdir, roots, samples=samples(roots, [*empty, good]))
    assert code == 1 and len(errors) == 1
    assert errors[0].startswith(f"hepsnake: error: {empty[0]} (sample 'qcd'): not a readable")


def test_a_cut_on_an_rntuple_field(workdir) -> None:
    """The NanoAOD example (an RNTuple, a cut on the raw field Jet_jetId): fine as shipped, and
    a misspelt field is named."""
    folder = workdir / "config" / "examples" / "nanoaod_btagging"
    sheet = folder / "samples.tsv"
    name = sheet.read_text().split("~/.local/skhepdata/")[1].split()[0]
    path = skhep_testdata.data_path(name)
    sheet.write_text(sheet.read_text().replace(f"~/.local/skhepdata/{name}", path))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    cuts = config["convert"]["cuts"]
    assert "Jet_jetId >= 2" in cuts
    mine = workdir / "mine.yaml"
    mine.write_text(yaml.safe_dump(config))
    assert snakemake(workdir, "-n", "--configfile", "mine.yaml", check=False).returncode == 0
    config["convert"]["cuts"] = [c.replace("Jet_jetId", "Jet_jetID") for c in cuts]
    mine.write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--configfile", "mine.yaml", check=False)
    assert proc.returncode == 1
    assert f"hepsnake: error: {path} (sample '{name.removesuffix('.root')}'): cut" in proc.stderr
    assert "uses unknown jet variable 'Jet_jetID' (neither a jet variable of reader" in proc.stderr


def test_the_convert_job_checks_its_first_file_first(workdir, roots) -> None:
    """The check a remote sample gets in its convert job: the same line, no output."""
    body = {"extends": "config/config.yaml", "samples": samples(roots)}
    body["convert"] = {"cuts": ["ptt < 500"]}
    (workdir / "my.yaml").write_text(yaml.safe_dump(body))
    out = workdir / "out"
    proc = subprocess.run(
        [
            *(HEPSNAKE, "convert", "--config", "my.yaml", "--sample", "qcd", "--no-progress"),
            *("--output", str(out / "qcd.h5"), "--summary", str(out / "qcd.json")),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"hepsnake convert: error: {roots / 'qcd.root'}: cut 'ptt < 500' uses unknown jet"
        " variable 'ptt' (neither a jet variable of reader 'toy' nor a branch of the file)"
    ]
    assert not out.exists() or not any(out.iterdir())
