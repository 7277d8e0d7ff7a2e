"""environment.yml and pyproject.toml declare the same dependencies and pins."""

from __future__ import annotations

import re
import tomllib

import yaml


def _normalise(requirement: str) -> str:
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def test_environment_matches_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = sorted(_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((repo / "environment.yml").read_text())
    pip = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert sorted(_normalise(r) for r in pip) == declared  # lists: a repeated line is a difference too
    assert f"python{project['requires-python']}" in environment["dependencies"]


def test_pins_that_this_machine_needs(repo):
    dependencies = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in dependencies  # an open range pulls a multi-GB CUDA build
    assert "mlflow>=3.17,<3.18" in dependencies  # 3.18.0's mlflow-skinny is not published


def test_the_package_data_ships_every_kernel_source(repo):
    """A wheel (non-editable install) carries what the library compiles at run time: every file
    of src/kan/csrc matches a package-data pattern."""
    patterns = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["kan"]
    package = repo / "src" / "kan"
    sources = [path.relative_to(package) for path in (package / "csrc").iterdir() if path.is_file()]
    assert sources and not [s for s in sources if not any(s.match(pattern) for pattern in patterns)]
