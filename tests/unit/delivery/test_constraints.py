"""constraints.txt pins every Python package, agrees with pyproject.toml and is self-consistent.

The file is what keeps `pip install` from backtracking (scripts/install.d/20-python.sh, the
Dockerfile). These checks read the installed metadata, so they hold wherever `make install` ran
with the file; a failure names the package and says to run `make lock`.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "constraints.txt"
SCRIPT = REPO_ROOT / "scripts" / "lock.py"
REFRESH = "run `make lock` (docs/images.md) and commit constraints.txt"


@functools.cache
def lock() -> ModuleType:
    """scripts/lock.py imported as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("ragflow_lock", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        assert separator and name == canonicalize_name(name), f"not `name==version`: {line!r}"
        found[name] = Version(version)
    return found


def test_every_direct_requirement_is_pinned_within_its_range() -> None:
    pinned = pins()
    for requirement in lock().project_requirements(REPO_ROOT / "pyproject.toml"):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in constraints.txt: {REFRESH}"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside {requirement}: {REFRESH}"
        )


def test_pins_satisfy_each_others_requirements() -> None:
    """No pinned package needs another pinned package at a version the file excludes."""
    pinned = pins()
    for name, version in pinned.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing to compare
        if Version(dist.version).public != str(version):
            continue  # installed at another version: its metadata says nothing about the pin
        for text in dist.requires or []:
            requirement = Requirement(text)
            other = canonicalize_name(requirement.name)
            if other in pinned and lock().applies(requirement, ()):
                assert requirement.specifier.contains(pinned[other], prereleases=True), (
                    f"{name}=={version} needs {requirement}, constraints.txt pins "
                    f"{other}=={pinned[other]}: {REFRESH}"
                )


def test_file_is_what_make_lock_writes_from_this_environment(tmp_path: Path) -> None:
    written = tmp_path / "constraints.txt"
    roots = lock().project_requirements(REPO_ROOT / "pyproject.toml")
    try:
        list(lock().closure(roots))
    except LookupError as error:  # a shared machine where someone removed a package
        pytest.skip(f"the environment is incomplete, so it cannot be compared: {error}")
    assert lock().main(["--output", str(written)]) == 0
    assert written.read_text() == CONSTRAINTS.read_text(), f"constraints.txt is stale: {REFRESH}"


def test_closure_follows_extras_and_markers(tmp_path: Path) -> None:
    """moto[server] pulls in flask (its `server` extra); a marker that never holds is skipped."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "probe"\ndependencies = ["moto[server]", '
        '"pyyaml; python_version < \'3\'", "probe[x]"]\n'
    )
    roots = lock().project_requirements(pyproject)
    assert [str(req) for req in roots] == ["moto[server]", 'pyyaml; python_version < "3"']
    names = dict(lock().closure(roots))
    assert {"moto", "flask", "boto3"} <= names.keys()
    assert "pyyaml" in names  # needed by moto[server], not by the skipped root


def test_local_version_labels_are_dropped() -> None:
    assert lock().pin("2.5.1+cpu") == "2.5.1"
    assert Requirement("torch==2.5.1").specifier.contains("2.5.1+cpu")


def test_every_pin_installs_on_the_oldest_python_the_images_use() -> None:
    """Debian bookworm's python3 (the debootstrapped image base) must accept every pin."""
    pinned = {name: str(version) for name, version in pins().items()}
    assert lock().python_floor_violations(pinned) == [], REFRESH
    (too_old,) = lock().python_floor_violations({"packaging": "26.4"}, floor="2.7")
    assert too_old.startswith("packaging==26.4 (Requires-Python >=")
