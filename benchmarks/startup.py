"""Start-up time of every ``hepsnake`` verb: the fixed cost each Snakemake job pays.

Per verb, median and min over ``--repeat`` rounds (the verbs interleaved, so a slow spell of a
shared machine hits them alike) of

* ``hepsnake <verb> --help`` (argument parsing: the CLI imports no stage module);
* a *no-op run*: the verb on inputs that do not exist, so it imports what its stage needs,
  reads the config and stops at its first input with the one-line error (exit 1): the time
  from process start to the first real work. ``list-files`` has no input to miss: it lists
  the shipped sample's local glob (one file), its whole work, and must succeed. Whether
  Lightning got imported is recorded (a wrapper checks ``sys.modules`` after the run).

Wall time counts the machine's load; CPU time (user + system of the child) much less so.
Target: at most 3 s for every verb but ``train``. Run by hand from the repository root,
e.g. ``python benchmarks/startup.py --repeat 5``; ``--smoke`` (one round; a test runs it) only
checks that the script runs and that every no-op run stops with its verb's error.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parse_args

from hepsnake.config import load, read_config, write_resolved

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
WRAPPER = """
import json, sys
from hepsnake.cli import main
heavy = {"lightning", "pytorch_lightning", "torch", "onnxruntime", "sklearn", "matplotlib"}
try:
    code = main(sys.argv[1:])
finally:
    loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
    print(json.dumps({"loaded": loaded}), file=sys.stderr)
sys.exit(code)
"""


def noop_args(verb: str, missing: Path, resolved: Path) -> list[str]:
    """What the rule passes (the resolved config of config/config.yaml and a name) and
    arguments naming inputs that do not exist (under ``missing``)."""
    config = load(str(REPO / "config" / "config.yaml"))
    sample, model = config["samples"][0]["name"], config["models"][0]
    m = str(missing)
    paths = {
        "simulate": ["--sample", "not-a-toy", "--output", f"{m}/x.root"],
        "convert": ["--sample", sample, "--output", f"{m}/x.h5", "--summary", f"{m}/x.json"],
        "gather": ["--sample", sample, "--output", f"{m}/x.h5", "--summary", f"{m}/x.json"],
        "list-files": ["--sample", sample, "--output", f"{m}/files.json"],
        "split": ["--inputs", f"{m}/a.h5", "--outputs", f"{m}/t.h5", f"{m}/v.h5", f"{m}/s.h5"],
        "norm": ["--train", f"{m}/t.h5", "--norm", f"{m}/n.yaml", "--class-dict", f"{m}/c.yaml"],
        "train": ["--model", model, "--train", f"{m}/t.h5", "--val", f"{m}/v.h5"],
        "predict": ["--model", model, "--checkpoint", f"{m}/best.ckpt", "--test", f"{m}/t.h5"],
        "evaluate": ["--model", model, "--predictions", f"{m}/p.h5", "--training", f"{m}/t.json"],
        "export": ["--model", model, "--checkpoint", f"{m}/best.ckpt", "--test", f"{m}/t.h5"],
        "report": ["--models", model, "--metrics", f"{m}/m.json", "--training", f"{m}/t.json"],
    }[verb]
    more = {
        "split": ["--summary", f"{m}/s.json"],
        "train": ["--norm", f"{m}/n.yaml", "--class-dict", f"{m}/c.yaml", "--outdir", f"{m}/m"],
        "predict": ["--output", f"{m}/p.h5"],
        "evaluate": ["--output", f"{m}/m.json", "--plots", f"{m}/plots"],
        "export": ["--val", f"{m}/v.h5", "--outdir", f"{m}/export"],
        "report": ["--split-summary", f"{m}/s.json", "--convert-summaries", f"{m}/c.json"],
    }.get(verb, [])
    tail = ["--output", f"{m}/report.md"] if verb == "report" else []
    return ["--config", str(resolved), *paths, *more, *tail]


VERBS = (
    "simulate",
    "list-files",
    "convert",
    "gather",
    "split",
    "norm",
    "train",
    "predict",
    "evaluate",
    "export",
    "report",
)
SUCCEEDS = {"list-files"}  # its no-op run is its whole (tiny) work


def timed(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU (user + system) seconds of ``cmd``, and its result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, proc


def check_noop(verb: str, proc: subprocess.CompletedProcess) -> None:
    """Stop unless the no-op run ended as one: exit status 1 with the verb's one-line error,
    or 0 for a verb of :data:`SUCCEEDS` (anything else, e.g. arguments the CLI no longer
    takes, would make its time meaningless)."""
    if verb in SUCCEEDS:
        ok = proc.returncode == 0
    else:
        ok = proc.returncode == 1 and f"hepsnake {verb}: error:" in proc.stderr
    if not ok:
        raise SystemExit(
            f"startup.py: the no-op run of {verb} did not stop at its first input"
            f" (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verbs", nargs="+", default=list(VERBS), choices=VERBS)
    args = parse_args(parser, {"repeat": 1})
    # per verb: --help wall, no-op wall, no-op CPU
    runs: dict[str, list[list[float]]] = {v: [[], [], []] for v in args.verbs}
    loaded: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="hepsnake-startup-") as tmp:
        missing = Path(tmp) / "missing"
        resolved = Path(tmp) / "resolved.yaml"  # as common.smk writes it
        with contextlib.chdir(REPO):
            write_resolved(read_config("config/config.yaml"), resolved)
        for _ in range(args.repeat):
            for verb in args.verbs:
                wall, _, helped = timed([sys.executable, "-m", "hepsnake.cli", verb, "--help"])
                if helped.returncode != 0:
                    raise SystemExit(f"hepsnake {verb} --help failed:\n{helped.stderr[-2000:]}")
                runs[verb][0].append(wall)
                cmd = [sys.executable, "-c", WRAPPER, verb, *noop_args(verb, missing, resolved)]
                wall, cpu, proc = timed(cmd)
                runs[verb][1].append(wall)
                runs[verb][2].append(cpu)
                check_noop(verb, proc)
                marks = [x for x in proc.stderr.splitlines() if x.startswith('{"loaded"')]
                loaded[verb] = json.loads(marks[-1])["loaded"] if marks else ["?"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median / min [s]")
    print(f"{'verb':10} {'--help wall':>13} {'no-op wall':>13} {'no-op CPU':>13}  target  imports")
    for verb in args.verbs:
        cells = " ".join(f"{statistics.median(r):>6.2f} /{min(r):>5.2f}" for r in runs[verb])
        best = min(statistics.median(runs[verb][1]), statistics.median(runs[verb][2]))
        ok = "-" if verb == "train" else ("met" if best <= TARGET_S else "NOT met")
        print(f"{verb:10} {cells}  {ok:7} {', '.join(loaded[verb])}")


if __name__ == "__main__":
    main()
