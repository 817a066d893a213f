"""A sample converted in parts (one job per group of files) and gathered as an HDF5 virtual
dataset: the grouping changes no prepared byte, failed parts are tolerated up to
``convert.max_failed_fraction`` and only they are redone by the next run, remote globs are
listed once so later dry runs need no network."""

import copy
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import test_remote
import yaml
from conftest import REPO, default_config, snakemake, stage
from ftag.hdf5 import H5Reader
from test_weights import nlo_weights

from hepsnake import paths
from hepsnake.config import part_digest, resolve, stage_digest
from hepsnake.config.contracts import FilesPerJob
from hepsnake.convert.convert import convert
from hepsnake.convert.file_list import sample_files
from hepsnake.convert.gather import gather
from hepsnake.convert.part import convert_part
from hepsnake.convert.parts import group_files, sample_parts
from hepsnake.errors import HepsnakeError
from hepsnake.prepare.split import SPLITS, split
from hepsnake.simulate.prepared import MASS_GRID
from hepsnake.simulate.toy import simulate, write_root

# sample -> (process, mass, jets per file)
SAMPLES = {"qcd": ("qcd", None, [300, 250, 200]), "sig": ("sig", 16.0, [200, 150])}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[Path]]:
    """Toy ROOT files, several per sample."""
    root = tmp_path_factory.mktemp("fanout-inputs")
    files: dict[str, list[Path]] = {}
    for name, (process, mass, sizes) in SAMPLES.items():
        for k, n in enumerate(sizes):
            path = root / f"{name}_{k}.root"
            write_root(simulate(name, process, n, 10 + k, mass=mass, **MASS_GRID), path)
            files.setdefault(name, []).append(path)
    return files


def toy_config(config_factory, inputs, **convert_options) -> dict:
    """The shipped config with the toy samples of ``inputs``, read by the toy reader less
    its eventNumber (events numbered by entry: the numbering must not depend on the parts)."""
    base = config_factory([{"name": "x", "files": ["x"], "reader": "toy"}])
    reader = copy.deepcopy(base["readers"]["toy"])
    del reader["jets"]["eventNumber"]
    samples = [
        {
            "name": name,
            "files": [str(f) for f in files],
            "reader": "by_entry",
            "label": SAMPLES[name][0],
            "params": {"mS": SAMPLES[name][1]} if SAMPLES[name][1] else {},
        }
        for name, files in inputs.items()
    ]
    return config_factory(
        samples,
        readers={"by_entry": reader},
        convert={"chunk_size": 120, **convert_options},
        prepare={"empty_class": "drop"},  # no bib sample
    )


def converted(sample: str) -> str:
    """The gathered file of ``sample``."""
    return paths.fill(paths.CONVERTED, sample=sample)


def summary_of(sample: str) -> str:
    """The convert summary of ``sample``."""
    return paths.fill(paths.CONVERT_SUMMARY, sample=sample)


def convert_in_parts(config: dict) -> None:
    """Every part of every sample, then the gathers, as the rules run them (cwd = workdir)."""
    for sample in config["samples"]:
        name = sample["name"]
        contract = stage(config, "convert", sample=name)
        for part in sample_parts(contract):
            convert_part(
                contract,
                part.index,
                paths.part_file(name, part.index),
                show_progress=False,
            )
        gather(contract, converted(name), summary_of(name))


def test_group_files():
    files = [f"/d/{i}.root" for i in range(7)]
    assert [p.files for p in group_files(files, FilesPerJob(3, 3))] == [
        tuple(files[0:3]),
        tuple(files[3:6]),
        tuple(files[6:]),
    ]
    assert [p.first_file for p in group_files(files, FilesPerJob(3, 3))] == [0, 3, 6]
    assert len(group_files(files, FilesPerJob(local=10, remote=1))) == 1
    urls = [f"root://eos//d/{i}.root" for i in range(5)]
    assert [len(p.files) for p in group_files(urls, FilesPerJob(local=10, remote=2))] == [2, 2, 1]
    # mixed: a local file takes 1/4 of a job, a remote one 1/2
    mixed = [files[0], files[1], urls[0], files[2], urls[1], urls[2]]
    parts = group_files(mixed, FilesPerJob(local=4, remote=2))
    assert [p.files for p in parts] == [tuple(mixed[:3]), (files[2], urls[1]), (urls[2],)]
    assert group_files([], FilesPerJob(5, 5)) == []


def test_max_failed_fraction_reruns_the_gather_alone(config_factory):
    """Rule convert's digest (a part job) leaves out convert.max_failed_fraction, which only
    the gather (its digest: the whole convert contract) judges; the grouping is in both."""
    sample = {"name": "q", "files": ["/d/q.root"], "reader": "toy", "label": "qcd"}

    def digests(**convert: object) -> tuple[str, str]:
        resolved = resolve(config_factory([sample], convert=convert))
        return part_digest(resolved, "q"), stage_digest(resolved, "convert", sample="q")

    part, whole = digests()
    tolerant = digests(max_failed_fraction=0.5)
    assert tolerant[0] == part and tolerant[1] != whole
    regrouped = digests(files_per_job=3)
    assert regrouped[0] != part and regrouped[1] != whole


def test_grouping_changes_no_prepared_byte(inputs, config_factory, tmp_path, monkeypatch):
    """One file per job, all files in one job, and the one-job convert(): the converted jets
    are equal and the prepared files identical byte for byte."""
    prepared = {}
    for grouping, per_job in (("one_per_job", 1), ("all_in_one", 100)):
        work = tmp_path / grouping
        work.mkdir()
        monkeypatch.chdir(work)
        config = toy_config(config_factory, inputs, files_per_job=per_job)
        convert_in_parts(config)
        n_parts = {s: len(sample_parts(stage(config, "convert", sample=s))) for s in SAMPLES}
        assert n_parts == ({"qcd": 3, "sig": 2} if per_job == 1 else {"qcd": 1, "sig": 1})
        gathered = [converted(s) for s in SAMPLES]
        outputs = {s: f"prepared/{s}.h5" for s in SPLITS}
        Path("prepared").mkdir()
        split(stage(config, "split"), gathered, outputs, "prepared/summary.json", control=False)
        prepared[grouping] = {
            p.name: p.read_bytes() for p in sorted(Path("prepared").iterdir()) if p.is_file()
        }
        with h5py.File(converted("qcd")) as h5:
            assert h5["jets"].is_virtual
            jets, tracks = h5["jets"][:], h5["tracks"][:]
    assert prepared["one_per_job"].keys() == {"train.h5", "val.h5", "test.h5", "summary.json"}
    for name, data in prepared["one_per_job"].items():
        assert data == prepared["all_in_one"][name], name
    # the same jets as one job converting every file into a plain file
    config = toy_config(config_factory, inputs)
    single = tmp_path / "single.h5"
    convert(stage(config, "convert", sample="qcd"), single, tmp_path / "single.json", False)
    with h5py.File(single) as h5:
        assert h5["jets"][:].tobytes() == jets.tobytes()
        assert h5["tracks"][:].tobytes() == tracks.tobytes()
    # events of different files never share a number
    events = jets["eventNumber"]
    assert len(np.unique(events // 2**32)) == 3 and events.max() < 2 * 2**32 + 300


def test_gathered_file_keeps_attrs_and_reads_as_one(inputs, config_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = toy_config(config_factory, inputs, files_per_job=1)
    convert_in_parts(config)
    summary = json.loads(Path(summary_of("sig")).read_text())
    assert summary["parts"] == 2 and summary["failed_parts"] == [] and summary["warnings"] == []
    assert [f["path"] for f in summary["files"]] == [str(f) for f in inputs["sig"]]
    with h5py.File(converted("sig")) as h5:
        assert h5["jets"].is_virtual and h5["tracks"].is_virtual
        assert {s.file_name for s in h5["jets"].virtual_sources()} == {
            "sig/part-00000.h5",
            "sig/part-00001.h5",
        }
        assert list(h5["jets"].attrs["flavour_label"]) == config["class_names"]
        assert h5["jets"].attrs["energy_unit"] == "GeV"
        assert (h5.attrs["sample"], h5.attrs["role"]) == ("sig", "train")
        inputs_attr = json.loads(h5.attrs["inputs"])
        assert [r["jets_written"] for r in inputs_attr] == [
            r["jets_written"] for r in summary["files"]
        ]
        assert h5["jets"].shape[0] == summary["jets"] == sum(r["jets_written"] for r in inputs_attr)
        assert h5["tracks"].shape == (summary["jets"], 40)
        jets = h5["jets"][:]
    # no creation time recorded: the same parts gathered again, a second later, are the same
    # bytes (a rerun or a by-hand gather writes what Snakemake wrote)
    first = Path(converted("sig")).read_bytes()
    time.sleep(1.1)  # HDF5 records times in seconds
    gather(stage(config, "convert", sample="sig"), converted("sig"), summary_of("sig"))
    assert Path(converted("sig")).read_bytes() == first
    # each part records its files, jets and skipped files
    with h5py.File(paths.part_file("sig", 1)) as h5:
        status = json.loads(h5.attrs["part_status"])
    assert status["state"] == "ok" and status["inputs"] == [str(inputs["sig"][1])]
    assert status["jets"] == summary["files"][1]["jets_written"] and status["skipped"] == []
    # atlas-ftag-tools reads the virtual file like any other, both samples at once
    files = [Path(converted(s)) for s in SAMPLES]
    total = sum(json.loads(Path(summary_of(s)).read_text())["jets"] for s in SAMPLES)
    reader = H5Reader(files, batch_size=total, shuffle=False)
    loaded = reader.load({"jets": None, "tracks": None}, num_global_objects=total)
    assert len(loaded["jets"]) == total and loaded["tracks"].shape == (total, 40)
    assert np.isin(jets["eventNumber"], loaded["jets"]["eventNumber"]).all()
    # a part file gone: the split refuses to read zeros in its place
    Path(paths.part_file("sig", 1)).unlink()
    with pytest.raises(HepsnakeError, match=r"1 part files .* missing, first .*part-00001\.h5"):
        split(stage(config, "split"), [converted("qcd"), converted("sig")], {}, "s.json")


def test_gathered_negative_weight_figures_add_up_over_parts(config_factory, tmp_path, monkeypatch):
    """The parts' weight sums added up give the figures (and the warning) of one job over
    every file."""
    monkeypatch.chdir(tmp_path)
    files = []
    for k, n in enumerate((400, 300, 200)):
        branches = simulate("q", "qcd", n, 50 + k, **MASS_GRID)
        branches["mcEventWeight"] = nlo_weights(len(branches["mcEventWeight"]), k)
        write_root(branches, tmp_path / f"q_{k}.root")
        files.append(str(tmp_path / f"q_{k}.root"))
    sample = {"name": "q", "files": files, "reader": "toy", "label": "qcd"}
    config = config_factory([sample], convert={"files_per_job": 1})
    convert_in_parts(config)
    gathered = json.loads(Path(summary_of("q")).read_text())
    assert gathered["parts"] == 3
    single = convert(stage(config, "convert", sample="q"), "single.h5", "single.json", False)
    assert gathered["negative_weights"] == pytest.approx(single["negative_weights"], abs=1e-12)
    assert 0.1 < gathered["negative_weights"]["fraction"] < 0.16
    assert [w["code"] for w in gathered["warnings"]] == ["negative_weights"]
    assert gathered["warnings"] == single["warnings"]


def test_part_status_of_skipped_and_failed_files(inputs, config_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.root"
    bad.write_bytes(inputs["qcd"][0].read_bytes()[:5000])
    files = [str(inputs["qcd"][0]), str(bad)]
    sample = {"name": "q", "files": files, "reader": "toy", "label": "qcd"}
    config = config_factory([sample], convert={"files_per_job": 2, "skip_bad_files": True})
    status = convert_part(stage(config, "convert", sample="q"), 0, "p.h5", False)
    assert status["state"] == "ok" and [s["path"] for s in status["skipped"]] == [str(bad)]
    assert "bad.root" in status["skipped"][0]["reason"]
    contract = stage(config_factory([sample], convert={"files_per_job": 2}), "convert", sample="q")
    status = convert_part(contract, 0, "p.h5", show_progress=False)
    assert status["state"] == "failed" and status["jets"] == 0
    assert status["error"].startswith(f"{bad}: ") and status["inputs"] == files
    with h5py.File("p.h5") as h5:
        assert list(h5) == [] and h5.attrs["sample"] == "q"
        assert json.loads(h5.attrs["part_status"]) == status
    with pytest.raises(HepsnakeError, match="sample 'q': has 1 parts, no part 1"):
        convert_part(contract, 1, "p.h5", show_progress=False)


def test_cli_part_and_gather_by_hand(inputs, tmp_path):
    """``hepsnake convert --part N`` and ``hepsnake gather`` with only a config and a sample
    name write where the rules would."""
    config = {
        "extends": str(REPO / "config" / "config.yaml"),
        "samples": [
            {"name": "q", "files": [str(f) for f in inputs["qcd"]], "reader": "toy", "label": "qcd"}
        ],
        "model_dir": str(REPO / "config" / "models"),
        "convert": {"files_per_job": 2},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    exe = shutil.which("hepsnake")
    assert exe, "the hepsnake console script is installed"

    def hepsnake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [exe, *args, "--config", "c.yaml", "--sample", "q"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    proc = hepsnake("gather")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "hepsnake gather: error: results/h5/q/part-00000.h5: part 0 of sample 'q' is not"
        " converted (`hepsnake convert --sample q --part 0`)"
    )
    for part in ("0", "1"):
        assert hepsnake("convert", "--part", part, "--no-progress").returncode == 0
    proc = hepsnake("gather")
    assert proc.returncode == 0, proc.stderr
    assert "gather q: 750 jets from 2 parts (0 failed) → results/h5/q.h5" in proc.stderr
    with h5py.File(tmp_path / "results" / "h5" / "q.h5") as h5:
        assert h5["jets"].shape == (750,)


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's ``Job stats`` table (rule -> jobs); empty when nothing is to be done."""
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[0] != "total"}


def converted_parts(output: str) -> list[str]:
    """The parts whose rule convert jobs a Snakemake run lists, in order."""
    return re.findall(r"wildcards: sample=\w+, part=(\d+)", output)


@pytest.mark.slow
def test_failed_part_tolerated_listed_and_alone_redone(inputs, workdir):
    good, bad = inputs["qcd"][1], workdir / "inputs" / "qcd_1.root"
    bad.parent.mkdir()
    bad.write_bytes(good.read_bytes()[:5000])
    files = [str(inputs["qcd"][0]), str(bad), str(inputs["qcd"][2])]
    overlay = {
        "extends": "config/config.yaml",
        "samples": [{"name": "q", "files": files, "reader": "toy", "label": "qcd"}],
        "convert": {"files_per_job": 1, "max_failed_fraction": 0.4},
    }
    (workdir / "config" / "fan.yaml").write_text(yaml.safe_dump(overlay))
    target = ["results/h5/q.h5", "--cores", "1", "--configfile", "config/fan.yaml"]
    first = snakemake(workdir, *target)
    output = first.stdout + first.stderr
    assert job_counts(output) == {"convert": 3, "gather": 1}
    summary = json.loads((workdir / summary_of("q")).read_text())
    assert summary["parts"] == 3
    (failed,) = summary["failed_parts"]
    assert failed["part"] == 1 and failed["files"] == [str(bad)]
    assert failed["error"].startswith(f"{bad}: ")
    reason = f"{bad}: left out, part 1 failed ({failed['error']})"
    assert summary["skipped"] == [{"path": str(bad), "reason": reason}]
    assert summary["warnings"][0]["code"] == "failed_parts"
    assert summary["jets"] == 300 + 200
    with h5py.File(workdir / converted("q")) as h5:
        assert h5["jets"].shape == (500,)
    part_log = (workdir / "results/logs/convert/q/part-00001.log").read_text()
    assert "part 1 of sample q failed" in part_log
    # the gather marked the failed part for a retry: Snakemake's DAG says it is to be done
    assert (workdir / paths.part_retry("q", 1)).read_text() == failed["error"] + "\n"
    dry = snakemake(workdir, *target, "-n")
    assert job_counts(dry.stdout) == {"convert": 1, "gather": 1}
    assert converted_parts(dry.stdout) == ["00001"]
    # the file fixed: the rerun converts that part alone and gathers again
    shutil.copyfile(good, bad)
    second = snakemake(workdir, *target)
    assert converted_parts(second.stdout + second.stderr) == ["00001"]
    summary = json.loads((workdir / summary_of("q")).read_text())
    assert summary["failed_parts"] == [] and summary["skipped"] == [] and summary["jets"] == 750
    assert job_counts(snakemake(workdir, *target, "-n").stdout) == {}


@pytest.mark.slow
def test_failed_part_beyond_the_fraction_stops_the_sample(inputs, workdir):
    bad = workdir / "inputs" / "bad.root"
    bad.parent.mkdir()
    bad.write_text("not a ROOT file")
    files = [str(inputs["qcd"][0]), str(bad)]
    overlay = {
        "extends": "config/config.yaml",
        "samples": [{"name": "q", "files": files, "reader": "toy", "label": "qcd"}],
        "convert": {"files_per_job": 1},
    }
    (workdir / "config" / "fan.yaml").write_text(yaml.safe_dump(overlay))
    target = ["results/h5/q.h5", "--cores", "1", "--configfile", "config/fan.yaml"]
    proc = snakemake(workdir, *target, check=False)
    assert proc.returncode != 0
    assert "Error in rule gather" in proc.stdout + proc.stderr
    log = (workdir / "results/logs/convert/q.log").read_text()
    assert log.startswith(
        "hepsnake gather: error: sample 'q': 1 of 2 parts failed"
        f" (convert.max_failed_fraction 0); part 1: {bad}: not a readable ROOT file"
    )
    assert len(log.strip().splitlines()) == 1
    assert not (workdir / converted("q")).exists()
    assert (workdir / paths.part_retry("q", 1)).exists()
    assert not (workdir / paths.part_retry("q", 0)).exists()
    dry = snakemake(workdir, *target, "-n")
    assert converted_parts(dry.stdout) == ["00001"]


s3 = test_remote.s3  # a local S3 server (moto) holding real ROOT files


@pytest.mark.slow
def test_remote_glob_listed_once_later_dags_need_no_network(
    s3, data_dir, workdir, config_factory, monkeypatch
):
    glob = f"{s3}/physlite/uproot-issue-*.root"
    sample = {"name": "lite", "files": [glob], "reader": "physlite", "label": "qcd"}
    config = default_config() | {  # inputs the physlite reader maps (checked by the DAG)
        "samples": [sample],
        "inputs": {"variables": {"jets": ["pt", "eta"], "tracks": ["pt", "eta", "phi"]}},
    }
    config["convert"] |= {"files_per_job": {"local": 10, "remote": 1}, "cuts": []}
    (workdir / "config" / "remote.yaml").write_text(yaml.safe_dump(config))
    target = ["results/h5/lite.h5", "--cores", "1", "--configfile", "config/remote.yaml"]
    # before the listing, the DAG stops at it
    assert "list_files" in job_counts(snakemake(workdir, *target, "-n").stdout)
    run = snakemake(workdir, *target)
    assert sorted(converted_parts(run.stdout + run.stderr)) == ["00000", "00001"]
    listing = json.loads((workdir / paths.file_list("lite")).read_text())
    urls = [f"{s3}/physlite/uproot-issue-{n}.root" for n in (798, 951)]
    assert listing == {"sample": "lite", "patterns": [glob], "files": urls}
    # the storage unreachable: the DAG is still built, from the listing
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    for index in (0, 1):
        (workdir / paths.part_file("lite", index)).unlink()
    (workdir / converted("lite")).unlink()
    dry = snakemake(workdir, *target, "-n")
    assert job_counts(dry.stdout) == {"convert": 2, "gather": 1}
    monkeypatch.undo()
    snakemake(workdir, *target)
    # the same jets as the local files converted in one job
    local = config_factory(
        [{**sample, "files": [str(data_dir / f"uproot-issue-{n}.root") for n in (798, 951)]}],
        convert={"cuts": []},
    )
    convert(
        stage(local, "convert", sample="lite"), workdir / "local.h5", workdir / "local.json", False
    )
    with (
        h5py.File(workdir / converted("lite")) as remote,
        h5py.File(workdir / "local.h5") as h5,
    ):
        assert sorted(remote) == sorted(h5)
        for name in h5:
            assert remote[name][:].tobytes() == h5[name][:].tobytes(), name


def test_a_part_status_is_read_with_checks(inputs, config_factory, tmp_path, monkeypatch):
    """A part file without its status attribute, or with one that is not JSON, is one error
    naming the file at the gather."""
    monkeypatch.chdir(tmp_path)
    sample = {"name": "q", "files": [str(inputs["qcd"][0])], "reader": "toy", "label": "qcd"}
    contract = stage(config_factory([sample]), "convert", sample="q")
    part = Path(paths.part_file("q", 0))
    convert_part(contract, 0, part, show_progress=False)
    gather(contract, converted("q"), summary_of("q"))
    for value, cause in [
        (None, "not a part file: no 'part_status' attribute"),
        ('{"inputs": [', "attribute 'part_status' is not JSON"),
        (np.arange(3), "attribute 'part_status' is not JSON"),
    ]:
        with h5py.File(part, "a") as h5:
            h5.attrs.pop("part_status", None)
            if value is not None:
                h5.attrs["part_status"] = value
        with pytest.raises(HepsnakeError, match=f"^{re.escape(str(part))}: {re.escape(cause)}"):
            gather(contract, converted("q"), summary_of("q"))


def test_a_sample_listing_is_read_with_checks(config_factory, tmp_path, monkeypatch):
    """A remote glob's listing: missing, truncated or of other patterns is one error naming
    the listing file."""
    monkeypatch.chdir(tmp_path)
    glob = "root://eos.example.org//store/q_*.root"
    sample = {"name": "r", "files": [glob], "reader": "toy", "label": "qcd"}
    contract = stage(config_factory([sample]), "convert", sample="r")
    listing = Path(paths.file_list("r"))
    with pytest.raises(HepsnakeError, match="sample 'r' has remote globs and is not listed yet"):
        sample_files(contract)
    listing.parent.mkdir(parents=True)
    listing.write_text('{"sample": "r", "patterns": [')
    with pytest.raises(HepsnakeError, match=r"files\.json: truncated file listing"):
        sample_files(contract)
    listing.write_text(json.dumps({"sample": "r", "patterns": [glob]}))
    with pytest.raises(HepsnakeError, match=r"files\.json: not a file listing: no key 'files'"):
        sample_files(contract)
    other = "root://eos.example.org//store/other_*.root"
    listing.write_text(json.dumps({"sample": "r", "patterns": [other], "files": []}))
    with pytest.raises(HepsnakeError, match=r"now has .*: list it again"):
        sample_files(contract)
    urls = ["root://eos.example.org//store/q_1.root"]
    listing.write_text(json.dumps({"sample": "r", "patterns": [glob], "files": urls}))
    assert sample_files(contract) == urls
