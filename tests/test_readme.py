"""The README's two commands are the ones CI and users run."""

import re

from conftest import REPO


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_main_and_test_commands():
    main, tests = (block.strip() for block in bash_blocks()[:2])
    assert main.endswith("snakemake --cores all") and "pip install -e ." in main
    assert tests.endswith("pytest")
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == tests
