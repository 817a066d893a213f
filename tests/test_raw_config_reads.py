"""No module below the config package reads a raw config dict (benchmarks/raw_config_reads.py
defines the count); the counter finds reads when there are some."""

import ast
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import raw_config_reads


def test_no_raw_config_reads_outside_the_config_package():
    reads = raw_config_reads.count(REPO)
    assert reads == {}, reads


def test_the_counter_finds_raw_reads():
    source = """
def stage(config: dict[str, Any], spec: dict[str, str], contract: Contract) -> None:
    ev = config["evaluate"]
    for name, tagger in ev.get("reference_taggers", {}).items():
        tagger["score"]
    spec["x"]  # a mapping of strings, not a config
    contract.evaluate.signal
"""
    reads = [text for _, text in raw_config_reads.raw_reads(ast.parse(source))]
    assert reads == [
        "stage(config: dict[str, Any])",
        "config['evaluate']",
        "ev.get('reference_taggers', {})",
        "tagger['score']",
    ]


def test_the_smoke_run_prints_the_count(capsys):
    assert raw_config_reads.main(["--smoke"]) == 0
    assert capsys.readouterr().out == "raw config reads outside hepsnake/config: 0\n"
