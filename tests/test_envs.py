"""The per-rule conda envs: pinned, consistent with pyproject.toml, and complete for their rules.

No conda channel is reachable here, so the env files are checked, not created.
"""

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.version import Version

ENVS = REPO / "envs"
# conda-forge / pytorch channel names of PyPI distributions
CONDA_NAMES = {
    "torch": "pytorch",
    "matplotlib": "matplotlib-base",
    "xxhash": "python-xxhash",
    "fsspec_xrootd": "fsspec-xrootd",  # the wheel's metadata spells it with _
}
CUDA_ENVS = {"train", "export"}


def pyproject_requirements() -> dict[str, Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    build = pyproject["build-system"]["requires"]
    reqs = [Requirement(r) for r in project["dependencies"] + extras + build]
    return {CONDA_NAMES.get(r.name, r.name).lower(): r for r in reqs}


def build_requirements() -> set[str]:
    """The packages ``pip install --no-build-isolation`` of hepsnake needs in the env."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    return {Requirement(r).name.lower() for r in requires}


def env_specs(name: str) -> dict[str, tuple[str, str]]:
    """Package → (version, build) of ``envs/<name>.yaml`` (conda ``name=version=build`` specs)."""
    spec = yaml.safe_load((ENVS / f"{name}.yaml").read_text())
    specs = {}
    for dep in spec["dependencies"]:
        assert isinstance(dep, str), f"{name}: pip sections are not used ({dep})"
        package, _, pinned = dep.partition("=")
        version, _, build = pinned.partition("=")
        specs[package.lower()] = (version, build)
    return specs


def env_pins(name: str) -> dict[str, str]:
    """Package → pinned version of ``envs/<name>.yaml``."""
    return {package: version for package, (version, _) in env_specs(name).items()}


def rule_envs() -> dict[str, set[str]]:
    """Env name → the ``hepsnake`` verbs its rules call (from workflow/rules/*.smk)."""
    verbs: dict[str, set[str]] = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            env = re.search(r'conda:\s*"\.\./\.\./envs/(\w+)\.yaml"', rule)
            verb = re.search(r'"hepsnake (\w+)', rule)
            assert env and verb, f"{smk.name}: rule {rule.split(':')[0]} lacks conda/shell"
            verbs.setdefault(env[1], set()).add(verb[1])
    return verbs


def verb_modules() -> dict[str, str]:
    """CLI verb → the hepsnake module its ``cmd_<verb>`` imports the stage from."""
    tree = ast.parse((REPO / "src" / "hepsnake" / "cli.py").read_text())
    out = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("cmd_"):
            first = next(n for n in ast.walk(fn) if isinstance(n, ast.ImportFrom))
            out[fn.name.removeprefix("cmd_")] = first.module
    return out


def module_file(module: str) -> Path:
    base = REPO / "src" / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def is_type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` block: its imports never run."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        todo += [c for c in ast.iter_child_nodes(node) if not is_type_checking(c)]
    return out


def imported_names(tree: ast.Module, top_level_only: bool = False) -> list[str]:
    """Absolute module names imported in ``tree`` (``from a import b`` gives a and a.b), but
    not under ``if TYPE_CHECKING:``."""
    names = []
    for node in tree.body if top_level_only else runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def third_party_imports(module: str) -> set[str]:
    """Top-level modules imported by ``module``, the hepsnake modules it reaches, and cli.py.

    Function-level imports count (they run when the stage runs), except in cli.py, whose
    ``cmd_<verb>`` functions import the other stages.
    """
    cli = imported_names(ast.parse(module_file("hepsnake.cli").read_text()), top_level_only=True)
    seen, todo, found = set(), [module, *cli], set()
    while todo:
        name = todo.pop()
        if name.split(".")[0] != "hepsnake":
            found.add(name.split(".")[0])
        elif name not in seen and module_file(name).exists():
            seen.add(name)
            todo += imported_names(ast.parse(module_file(name).read_text()))
    return found


def test_every_rule_family_has_a_valid_env():
    assert set(rule_envs()) == {p.stem for p in ENVS.glob("*.yaml")}
    for env in rule_envs():
        spec = yaml.safe_load((ENVS / f"{env}.yaml").read_text())
        assert spec["channels"][-1] == "nodefaults", env
        assert env_pins(env)["python"] == "3.11", env
        hook = ENVS / f"{env}.post-deploy.sh"
        assert "pip install --no-deps" in hook.read_text(), f"{hook.name} installs hepsnake"
        if "--no-build-isolation" in hook.read_text():
            missing = build_requirements() - set(env_pins(env))
            assert not missing, f"envs/{env}.yaml lacks the build requirements {missing}"


@pytest.mark.parametrize("env", sorted(p.stem for p in ENVS.glob("*.yaml")))
def test_env_pins_agree_with_pyproject(env):
    reqs = pyproject_requirements()
    for package, pinned in env_pins(env).items():
        if package in ("python", "pip", "cuda-version"):
            continue
        assert re.fullmatch(r"\d+(\.\d+)+", pinned), f"{env}: {package} is not pinned ({pinned})"
        assert package in reqs, f"{env}: {package} is not a dependency in pyproject.toml"
        # a conda pin 'x.y' means any x.y.*: its lowest release must satisfy pyproject
        assert reqs[package].specifier.contains(Version(pinned)), (
            f"{env}: {package}={pinned} violates pyproject.toml '{reqs[package]}'"
        )
    if env in CUDA_ENVS:
        specs = env_specs(env)
        assert specs["pytorch"][1] == "cuda*", f"{env}: conda-forge's CUDA build of PyTorch"
        assert "cuda-version" in specs, f"{env}: the CUDA release is pinned"


@pytest.mark.parametrize("env", sorted(rule_envs()))
def test_env_holds_what_its_rules_import(env):
    dists = packages_distributions()
    pins = env_pins(env)
    modules = verb_modules()
    for verb in rule_envs()[env]:
        for top in third_party_imports(modules[verb]):
            if top not in dists:  # the standard library
                continue
            names = {CONDA_NAMES.get(d, d).lower() for d in dists[top]}
            assert names & set(pins), f"envs/{env}.yaml lacks {names} for 'hepsnake {verb}'"
