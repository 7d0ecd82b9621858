"""``sessions new-driver``: the generated distribution is lint-clean, typed, and
its driver passes the conformance kit (run by pytest on the generated project,
in a subprocess, as its author would run it). tests/test_wheels.py installs it
as a wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sessions.cli import make_cli

BIN = Path(sys.executable).parent


def new_driver(*args: str, cwd: Path) -> tuple[int, str]:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(make_cli(), ["new-driver", *args])
    finally:
        os.chdir(previous)
    return result.exit_code, result.output


def run(argv: list[str], cwd: Path) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "SESSIONS_", "SESSION_")) and k != "PYTHONPATH"
    }
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{' '.join(argv)}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def test_writes_a_complete_distribution(tmp_path: Path) -> None:
    code, output = new_driver("my_store", cwd=tmp_path)
    assert code == 0, output
    project = tmp_path / "sessions-my-store"
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    assert files == [
        ".github/workflows/test.yml",
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/sessions_my_store/__init__.py",
        "src/sessions_my_store/driver.py",
        "src/sessions_my_store/plugin.py",
        "src/sessions_my_store/py.typed",
        "tests/test_conformance.py",
        "tests/test_plugin.py",
    ]
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "sessions-my-store"' in pyproject
    assert '[project.entry-points."sessions.drivers"]\nmy_store = "sessions_my_store.plugin"' in (
        pyproject
    )
    assert "SESSION_MY_STORE_NAMESPACE" in (project / "README.md").read_text()
    assert "python -m pytest" in (project / ".github/workflows/test.yml").read_text()
    assert "sessions-my-store/" in output


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-Store", "not a driver name"),
        ("9lives", "not a driver name"),
        ("redis", "first-party driver"),
        ("memory", "first-party driver"),
    ],
)
def test_refuses_bad_names(tmp_path: Path, name: str, message: str) -> None:
    code, output = new_driver(name, cwd=tmp_path)
    assert code == 2
    assert message in output
    assert list(tmp_path.iterdir()) == []


def test_never_writes_into_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, output = new_driver("store", "-o", "taken", cwd=tmp_path)
    assert code == 1
    assert "not empty" in output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


@pytest.mark.slow
def test_generated_project_is_clean_typed_and_passes_the_conformance_kit(tmp_path: Path) -> None:
    code, output = new_driver("kv_store", "-o", "proj", cwd=tmp_path)
    assert code == 0, output
    project = tmp_path / "proj"
    run([str(BIN / "ruff"), "check", "--no-cache", "."], project)
    run([str(BIN / "ruff"), "format", "--check", "--no-cache", "."], project)
    run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy")], project)
    report = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"], project
    )
    summary = report.strip().splitlines()[-1]
    assert " passed" in summary, report
    assert "failed" not in summary, report
    assert "error" not in summary, report
    # Sync, async and trio classes all ran the kit.
    assert int(summary.split()[0]) >= 3 * 10
