"""Documentation that must not drift from the code."""

from __future__ import annotations

from crm.cli import build_parser
from crm.metrics.registry import METRICS, markdown_table
from crm.reports import REPORTS
from tests.conftest import ROOT


def test_metrics_doc_matches_the_registry():
    doc = (ROOT / "docs" / "METRICS.md").read_text(encoding="utf-8")
    assert doc.endswith(markdown_table()), "regenerate docs/METRICS.md from crm.metrics.registry.markdown_table()"


def test_readme_names_every_command_report_and_metric_doc():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in commands:
        assert f"python -m crm {command}" in readme or f"crm {command}" in readme, command
    for name in REPORTS:
        assert f"`{name}`" in readme, name
    assert "docs/METRICS.md" in readme
    assert len(METRICS) >= 18


def test_readme_starts_with_the_two_commands():
    lines = [ln for ln in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if ln.strip()]
    blocks = [ln for ln in lines[:8] if not ln.startswith(("#", "```"))]
    assert blocks[:2] == [
        "pip install -r requirements.txt && streamlit run app.py",
        "pip install -r requirements-dev.txt && python -m pytest",
    ]
