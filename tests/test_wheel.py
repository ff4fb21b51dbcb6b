"""The built wheel works on its own: presets ship as package data and the CLI runs from outside the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "app", "assets")
# Never copied into the build tree: a stale build/ would leak deleted modules into the wheel.
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "*.dlp",
                              ".pytest_cache", ".import_linter_cache", ".grimp_cache", ".hypothesis")


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 120) -> str:
    """Run a command, fail the test with its output unless it exits 0, and return its stdout."""
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert p.returncode == 0, f"{' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def checkout_packages() -> set[str]:
    """Every importable package of the checkout (a folder with __init__.py under engine/, app/ or assets/)."""
    return {".".join(init.parent.relative_to(ROOT).parts)
            for top in PACKAGES for init in (ROOT / top).rglob("__init__.py") if "__pycache__" not in init.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, site): a wheel built from a clean copy of the checkout, installed with --target into site."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, site = tmp / "src", tmp / "dist", tmp / "site"
    # Build from a copy so the test never writes build/ or *.egg-info into the shared checkout.
    shutil.copytree(ROOT, src, ignore=SKIP)
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)], cwd=tmp)
    (wheel,) = dist.glob("*.whl")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
         "--target", str(site), str(wheel)], cwd=tmp)
    return wheel, site


@pytest.fixture
def outside(tmp_path: Path, installed: tuple[Path, Path]) -> tuple[Path, dict[str, str]]:
    """(cwd, env) for running the installed copy from a folder outside the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(installed[1])
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return cwd, env


def test_wheel_holds_every_package_and_preset(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert checkout_packages() <= packages, f"missing from the wheel: {sorted(checkout_packages() - packages)}"
    presets = {p.name for p in (ROOT / "assets" / "presets").glob("*.json")}
    shipped = {name.rsplit("/", 1)[1] for name in names if name.startswith("assets/presets/")}
    assert presets and presets <= shipped, f"presets missing from the wheel: {sorted(presets - shipped)}"
    weights = {p.name for p in (ROOT / "assets" / "weights").glob("*.safetensors")}
    shipped = {name.rsplit("/", 1)[1] for name in names if name.startswith("assets/weights/")}
    assert weights and weights <= shipped, f"trained weights missing from the wheel: {sorted(weights - shipped)}"


def test_installed_copy_wins_over_the_editable_checkout(outside, installed):
    cwd, env = outside
    site = installed[1].resolve()
    code = "import app, assets, engine; print(engine.__file__); print(assets.__file__); print(app.__file__)"
    for line in run([sys.executable, "-c", code], cwd=cwd, env=env).splitlines():
        path = Path(line).resolve()
        assert path.is_relative_to(site) and not path.is_relative_to(ROOT), f"{path} is not from {site}"


def test_installed_cli_lists_every_preset(outside):
    cwd, env = outside
    listed = run([sys.executable, "-m", "engine", "presets"], cwd=cwd, env=env).split()
    expected = sorted(p.stem for p in (ROOT / "assets" / "presets").glob("*.json"))
    assert expected and listed == expected


def test_installed_cli_trains_a_preset(outside):
    cwd, env = outside
    out = cwd / "spiral.dlp"
    run([sys.executable, "-m", "engine", "train", "spiral", "--epochs", "1", "--quiet", "--out", str(out)],
        cwd=cwd, env=env, timeout=300)
    assert out.is_file() and out.stat().st_size > 0


def test_installed_cli_trains_the_transfer_preset_from_the_shipped_weights(outside):
    cwd, env = outside
    out = cwd / "transfer.json"
    run([sys.executable, "-m", "engine", "train", "digits-transfer", "--steps", "2", "--quiet", "--metrics-json",
         str(out)], cwd=cwd, env=env, timeout=300)
    assert out.is_file()
