"""pyproject.toml, environment.yml and requirements.lock list the same packages, and torch is pinned."""

from __future__ import annotations

import re
import tomllib

import yaml

from ytrec_lib.report import REPO_ROOT

CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ
CONDA_ONLY = {"python", "pip", "openjdk"}  # openjdk: the Java 17 that pyspark needs


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return norm(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0])


def pyproject_packages() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    specs = project["dependencies"] + extras["dev"] + extras["scale"]  # scale: pinned, make test runs Spark
    return {requirement_name(s): s for s in specs}


def conda_packages() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str)]
    return {requirement_name(s): s for s in specs}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not an exact pin (name==version)"
            pins[norm(name)] = version.strip()
    return pins


def test_conda_and_pip_list_the_same_packages():
    pip_names = {CONDA_NAMES.get(n, n) for n in pyproject_packages()}
    conda_names = set(conda_packages()) - CONDA_ONLY
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}"
    )


def test_every_package_is_pinned_in_the_lock():
    pins = lock_pins()
    missing = sorted(set(pyproject_packages()) - set(pins))
    assert not missing, f"not pinned in requirements.lock: {missing}"


def test_torch_is_the_cpu_build_on_disk_everywhere():
    assert lock_pins()["torch"] == "2.13.0"
    assert pyproject_packages()["torch"] == "torch==2.13.0"
    assert conda_packages()["pytorch"] == "pytorch=2.13.0"
