"""Remote sample files: s3:// read inside the convert job, from a local S3 server (moto).

Credentials and the endpoint come from the environment only (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3), exactly as a convert job on a batch node sees them;
they must never reach the job's log, the summary JSON or the HDF5 provenance attributes.
"""

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import h5py
import numpy as np
import pytest

from hepsnake.config import contract, expand_files, resolve, write_resolved
from hepsnake.convert.convert import convert
from hepsnake.io.listing import is_remote_glob
from hepsnake.io.remote import redact_text, redact_url, url_secrets

BUCKET = "hepsnake-test"
# distinctive fake credentials, fresh each run, so a hit cannot come from anywhere else
ACCESS_KEY = "AKIAHEPSNAKE" + secrets.token_hex(4).upper()
SECRET_KEY = "hepsnake/Secret+" + secrets.token_hex(12)
UPLOADS = {
    "hzz/uproot-HZZ.root": "uproot-HZZ.root",
    "physlite/uproot-issue-798.root": "uproot-issue-798.root",
    "physlite/uproot-issue-951.root": "uproot-issue-951.root",
}
NOT_ROOT = "physlite/README.md"  # in the listing, not matched by *.root
HZZ_READER = {
    "type": "flat",
    "tree": "events",
    "entry": "event",
    "jets": {"px": "Jet_Px", "py": "Jet_Py", "btag": "Jet_btag", "mcEventWeight": "EventWeight"},
}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def s3(data_dir, tmp_path_factory):
    """A moto S3 server on 127.0.0.1 holding real ROOT files; AWS_* set for this module."""
    pytest.importorskip("s3fs")
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    try:
        with pytest.MonkeyPatch.context() as mp:
            for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", *PROXY_VARS):
                mp.delenv(var, raising=False)
            mp.setenv("AWS_CONFIG_FILE", str(nowhere))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
            mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            mp.setenv("AWS_ENDPOINT_URL_S3", f"http://{host}:{port}")
            mp.setenv("NO_PROXY", "127.0.0.1,localhost")
            mp.setenv("no_proxy", "127.0.0.1,localhost")
            client = boto3.client("s3")  # endpoint and credentials from the environment
            client.create_bucket(Bucket=BUCKET)
            for key, name in UPLOADS.items():
                client.upload_file(str(data_dir / name), BUCKET, key)
            client.put_object(Bucket=BUCKET, Key=NOT_ROOT, Body=b"a text file\n")
            yield f"s3://{BUCKET}"
    finally:
        server.stop()


def hepsnake_convert(config: dict, sample: str, results: Path) -> subprocess.CompletedProcess:
    """Run ``hepsnake convert`` as the convert rule does: the resolved config file and the
    sample's name, log file in results/."""
    hepsnake = shutil.which("hepsnake")
    assert hepsnake, "the hepsnake console script is installed"
    log = results / "logs" / "convert" / f"{sample}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    resolved = results / "config" / "resolved.yaml"
    write_resolved(resolve(config), resolved)
    args = [
        hepsnake,
        "convert",
        "--config",
        str(resolved),
        "--sample",
        sample,
        "--output",
        str(results / "h5" / f"{sample}.h5"),
        "--summary",
        str(results / "h5" / f"{sample}.summary.json"),
        "--no-progress",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    log.write_text(proc.stdout + proc.stderr)
    return proc


def string_attrs(h5: h5py.File) -> list[str]:
    """Every string-valued attribute of the file and of every group and dataset in it."""
    values: list[str] = []

    def collect(obj: h5py.HLObject) -> None:
        for value in obj.attrs.values():
            items = value.tolist() if isinstance(value, np.ndarray) else [value]
            values.extend(v.decode() if isinstance(v, bytes) else str(v) for v in items)

    collect(h5)
    h5.visititems(lambda _name, obj: collect(obj))
    return values


def assert_no_secrets(results: Path, *texts: str) -> None:
    """No credential in ``texts``, in any file under ``results``, or in any HDF5 string attr."""
    needles = {ACCESS_KEY, SECRET_KEY}
    needles |= {quote(n, safe="") for n in needles}  # URL-encoded forms too
    files = [p for p in results.rglob("*") if p.is_file()]
    assert files
    for needle in needles:
        for text in texts:
            assert needle not in text
        for path in files:
            assert needle.encode() not in path.read_bytes(), path
        for path in results.rglob("*.h5"):
            with h5py.File(path) as h5:
                assert not [v for v in string_attrs(h5) if needle in v], path


def assert_same_h5(remote: Path, local: Path) -> None:
    """Same datasets, dtypes and values; same class names, sample and role attributes."""
    with h5py.File(remote) as a, h5py.File(local) as b:
        assert sorted(a) == sorted(b)
        for name in a:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)
        assert list(a["jets"].attrs["class_names"]) == list(b["jets"].attrs["class_names"])
        for key in ("sample", "role"):
            assert a.attrs[key] == b.attrs[key]


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The error line(s) of a failed run: exactly one, the last line of stderr.

    botocore's INFO lines ("Found credentials in environment variables.") may precede it.
    """
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower() or "Traceback" in line]
    assert errors == lines[-1:], proc.stderr
    return errors


def no_leftovers(results: Path) -> list[str]:
    """Names in results/h5: the outputs, and any temporary file a conversion left behind."""
    h5_dir = results / "h5"
    return sorted(p.name for p in h5_dir.iterdir()) if h5_dir.exists() else []


@pytest.mark.parametrize(
    ("files", "reader", "local_files"),
    [
        pytest.param(["hzz/uproot-HZZ.root"], "hzz", ["uproot-HZZ.root"], id="explicit-url"),
        pytest.param(
            ["physlite/uproot-issue-*.root"],
            "physlite",
            ["uproot-issue-798.root", "uproot-issue-951.root"],
            id="glob",
        ),
    ],
)
def test_s3_convert_matches_local(
    s3, files, reader, local_files, data_dir, tmp_path, config_factory
):
    def config_for(paths: list[str]) -> dict:
        sample = {"name": "remote", "files": paths, "reader": reader, "label": "qcd"}
        return config_factory([sample], readers={"hzz": HZZ_READER}, convert={"cuts": []})

    results = tmp_path / "results"
    proc = hepsnake_convert(config_for([f"{s3}/{f}" for f in files]), "remote", results)
    assert proc.returncode == 0, proc.stderr
    local_out = tmp_path / "local"
    local_config = config_for([str(data_dir / f) for f in local_files])
    local = convert(
        contract(resolve(local_config), "convert", sample="remote"),  # what the CLI gets
        local_out / "remote.h5",
        local_out / "remote.json",
        show_progress=False,
    )
    summary = json.loads((results / "h5" / "remote.summary.json").read_text())
    # the glob was expanded by listing the bucket: both files, sorted, README.md not matched
    assert [f["path"] for f in summary["files"]] == [
        f"{s3}/{Path(files[0]).parent}/{name}" for name in local_files
    ]
    assert summary["jets"] == local["jets"] > 0 and not summary["skipped"]
    for remote_file, local_file in zip(summary["files"], local["files"], strict=True):
        for key in ("entries", "jets_read", "jets_written"):
            assert remote_file[key] == local_file[key]
        assert "xxh3_64" not in remote_file  # remote files are not downloaded to be hashed
    assert_same_h5(results / "h5" / "remote.h5", local_out / "remote.h5")
    assert f"{local['jets']} jets" in proc.stderr
    assert no_leftovers(results) == ["remote.h5", "remote.summary.json"]
    assert_no_secrets(results, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    ("files", "shown", "needle"),
    [
        # the good first file is already written to the temporary output when the second fails
        (["hzz/uproot-HZZ.root", "hzz/missing.root"], "hzz/missing.root", "file not found"),
        (["nothing/*.root"], "nothing/*.root", "no file matches (sample 'gone')"),
    ],
    ids=["missing-key", "empty-glob"],
)
def test_s3_missing_key_one_error_line_no_output(
    s3, files, shown, needle, tmp_path, config_factory
):
    sample = {"name": "gone", "files": [f"{s3}/{f}" for f in files], "reader": "hzz"}
    config = config_factory([sample], readers={"hzz": HZZ_READER}, convert={"cuts": []})
    results = tmp_path / "results"
    proc = hepsnake_convert(config, "gone", results)
    assert proc.returncode == 1
    assert error_lines(proc) == [f"hepsnake convert: error: {s3}/{shown}: {needle}"]
    assert no_leftovers(results) == []  # no .h5, no summary, no .tmp left behind
    assert_no_secrets(results, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("s3://AKIAXYZ:s3cr%2Fet@bucket/a.root", "s3://***@bucket/a.root", ["AKIAXYZ", "s3cr/et"]),
        ("s3://bucket/dir/a.root", "s3://bucket/dir/a.root", []),
        ("root://alice@eosuser.cern.ch//eos/a.root", "root://***@eosuser.cern.ch//eos/a.root", []),
        (
            "root://eosuser.cern.ch//eos/a.root?authz=tok123&xrd.wantprot=unix",
            "root://eosuser.cern.ch//eos/a.root?authz=***&xrd.wantprot=unix",
            ["tok123"],
        ),
        (
            "https://b.s3.amazonaws.com/a.root?X-Amz-Credential=AKIAQ&X-Amz-Signature=f00d",
            "https://b.s3.amazonaws.com/a.root?X-Amz-Credential=***&X-Amz-Signature=***",
            ["AKIAQ", "f00d"],
        ),
        ("/data/user:pass@x/a.root", "/data/user:pass@x/a.root", []),
    ],
)
def test_redact_url(url, shown, hidden):
    assert redact_url(url) == shown
    assert redact_url(shown) == shown
    assert set(hidden) <= set(url_secrets(url))
    message = redact_text(f"{url}: cannot open {url.split('://')[-1]} ({' '.join(hidden)})", url)
    assert message.startswith(f"{shown}: ")
    for secret in hidden:
        assert secret not in message


def test_remote_globs_untouched_outside_the_job():
    """Snakemake builds its DAG with ``expand_files(sample)``: no listing, no credentials."""
    urls = ["s3://no-such-bucket/x/*.root", "root://host//eos/y/[ab].root", "https://h/a.root?x=1"]
    assert expand_files("s", urls) == urls
    assert [is_remote_glob(u) for u in urls] == [True, True, False]
    assert not is_remote_glob("root://host//eos/a.root?xrd.wantprot=krb5")
