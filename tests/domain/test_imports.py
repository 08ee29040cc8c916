"""domain/ must stay pure: only the standard library and pydantic."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN = {"mmpy_bot", "aiohttp", "httpx", "aiosqlite", "sqlite3", "mattermostautodriver", "storage", "gateway", "plugins"}


def imported_top_level_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_domain_has_python_files():
    assert len(list(DOMAIN.glob("*.py"))) >= 8


def test_domain_imports_only_stdlib_and_pydantic():
    allowed = set(sys.stdlib_module_names) | {"pydantic", "domain", "__future__"}
    offenders = {}
    for path in DOMAIN.rglob("*.py"):
        bad = imported_top_level_modules(path) - allowed
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_domain_imports_nothing_forbidden():
    for path in DOMAIN.rglob("*.py"):
        assert not imported_top_level_modules(path) & FORBIDDEN, path.name


def test_checker_detects_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import sqlite3\nfrom aiohttp import web\n")
    assert imported_top_level_modules(sample) == {"sqlite3", "aiohttp"}
