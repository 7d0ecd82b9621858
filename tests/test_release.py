"""Ready to publish: ``scripts/release.sh`` passes on the workspace, and the
checks it makes (one version, matching pins, licence, classifiers) hold in the
sources and catch what they are meant to catch."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from .test_wheels import REPO, _env, _uv

PACKAGES = sorted((REPO / "packages").iterdir())


def _release_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "release_check", REPO / "scripts" / "release_check.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_check = _release_check()
VERSION = (REPO / "VERSION").read_text().strip()


@pytest.mark.slow
def test_release_script_builds_checks_and_installs_every_distribution(tmp_path: Path) -> None:
    _uv()
    out = tmp_path / "dist"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "release.sh"), str(out)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    released = sorted(p.name for p in [*out.glob("*.whl"), *out.glob("*.tar.gz")])
    expected = sorted(
        f"{name.replace('-', '_')}-{VERSION}{suffix}"
        for name in release_check.RELEASED
        for suffix in ("-py3-none-any.whl", ".tar.gz")
    )
    assert released == expected
    assert sorted(p.name for p in (out / "not-released").iterdir()) == [
        "sessions_dbm-0.1.0-py3-none-any.whl",
        "sessions_dbm-0.1.0.tar.gz",
    ]
    assert proc.stdout.count("PASSED") == 10  # twine check, each file
    assert "ok: sessions-core alone: 5 distributions installed" in proc.stdout
    for name in release_check.RELEASED:
        assert f"ok: {name} alone:" in proc.stdout


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_each_package_reads_the_workspace_version_and_pins_core_to_it(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    source = package / project["tool"]["hatch"]["version"]["path"]
    assert source.resolve() == REPO / "VERSION"
    pattern = project["tool"]["hatch"]["version"]["pattern"]
    assert re.search(pattern, source.read_text())["version"] == VERSION
    deps = project["project"]["dependencies"]
    assert release_check.pin_problems(package.name, deps, VERSION) == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_each_package_has_the_licence_urls_classifiers_and_its_readme(package: Path) -> None:
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert (package / "LICENSE").read_text() == (REPO / "LICENSE").read_text()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert sorted(project["urls"]) == sorted(release_check.URL_LABELS)
    assert release_check.classifier_problems(package.name, project["classifiers"]) == []
    assert project["readme"] == "README.md"
    readme = (package / "README.md").read_text()
    assert "pip install" in readme
    assert project["urls"]["Documentation"] in readme


def test_pin_check_catches_a_driver_pinned_to_another_version() -> None:
    check = release_check.pin_problems
    assert check("sessions-redis", ["sessions-core>=0.1.0", "redis>=5"], "0.1.0") == []
    assert check("sessions-redis", ["sessions-core>=0.0.9"], "0.1.0") == [
        "sessions-redis: requires sessions-core>=0.0.9, but the workspace version is 0.1.0 "
        "(expected sessions-core>=0.1.0)"
    ]
    assert check("sessions-redis", ["redis>=5"], "0.1.0") == [
        "sessions-redis: requires sessions-core 0 times (expected once)"
    ]
    assert check("sessions-core", ["pluggy>=1.5"], "0.1.0") == []


def test_classifier_check_catches_unknown_and_missing_classifiers() -> None:
    problems = release_check.classifier_problems(
        "x", ["Framework :: Starlette-ish", "Programming Language :: Python :: 3"]
    )
    assert problems == [
        "x: unknown classifier 'Framework :: Starlette-ish'",
        "x: no 'Typing :: Typed' classifier",
        "x: no Python version classifier",
    ]


def test_the_example_driver_is_marked_as_never_published() -> None:
    project = tomllib.loads((REPO / "examples" / "sessions-dbm" / "pyproject.toml").read_text())
    assert release_check.PRIVATE in project["project"]["classifiers"]
    assert (
        "example, not published" in (REPO / "examples" / "sessions-dbm" / "README.md").read_text()
    )


def test_docs_and_readme_say_how_to_install() -> None:
    index = (REPO / "docs" / "index.md").read_text()
    assert re.search(r"^pip install sessions-core ", index, flags=re.M)
    assert 'pip install "sessions-core[cli]"' in index
    assert 'pip install "sessions-core[cli]"' in (REPO / "README.md").read_text()
