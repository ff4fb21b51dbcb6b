"""The Qt that crashes under live plotting (ARCHITECTURE.md, "The Qt pin") can be neither installed by pip nor started."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pyqtgraph as pg
import PySide6
from packaging.requirements import Requirement

from app import main


def requirements() -> dict[str, Requirement]:
    data = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    return {r.name.lower(): r for r in map(Requirement, data["project"]["dependencies"])}


def test_pyproject_admits_no_pyside6_6_12():
    qt = requirements()["pyside6-essentials"]
    for version in ("6.12.0", "6.12.1", "6.12.0rc1", "6.13.0"):
        assert not qt.specifier.contains(version, prereleases=True), version
    assert qt.specifier.contains("6.11.3")
    assert "pyside6" not in requirements()  # the full PySide6 would need Essentials of its own version


def test_the_crashing_pair_refuses_to_start_with_the_fix(capsys, monkeypatch):
    assert main.unsupported_qt("6.11.3", "0.14.0") is None
    assert main.unsupported_qt("6.12.0", "0.13.7") is None
    why = main.unsupported_qt("6.12.0", "0.14.0")
    assert "crashes during live plotting" in why and "PySide6-Essentials>=6.10.2,<6.12" in why
    assert main.unsupported_qt(PySide6.__version__, pg.__version__) is None  # what the tests run on
    monkeypatch.setattr(main, "unsupported_qt", lambda: why)
    assert main.main([]) == 2
    assert capsys.readouterr().err == f"error: {why}\n"
