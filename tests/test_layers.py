"""The layer rule over the whole tree: no module imports a layer above its own.

The product's layers, lowest first (docs/architecture.md "Layers"):

    domain, version  →  settings, storage, telemetry  →  gateway  →  services  →  plugins, backstage  →  bot

A package may import the packages listed for it in ``ALLOWED`` and nothing else of the project
(third-party and standard modules are not this test's business; ``tests/domain/test_imports.py``
keeps domain/ to the standard library and pydantic). Two rules are stricter than the ranks:
plugins reach state only through services, so they never import storage/; and the sandbox, which
stands in for Mattermost, shares no code with the bot — a shared helper could make it agree with
the bot where the real server would not. The tools around the product (demo, bench, tests) may
import anything. Imports under ``if TYPE_CHECKING:`` do not run and do not count.
"""

from __future__ import annotations

import pytest

from tests.test_import_graph import FIRST_PARTY, ROOT, Edge, import_edges, module_files

PRODUCT_BELOW_BOT = ("domain", "version", "settings", "storage", "telemetry", "gateway", "services", "plugins",
                     "backstage")
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "version": frozenset(),
    "settings": frozenset({"version"}),
    "storage": frozenset({"domain"}),
    "telemetry": frozenset({"domain", "version", "settings", "storage"}),
    "gateway": frozenset({"domain", "version", "settings"}),
    "services": frozenset({"domain", "version", "settings", "storage", "telemetry", "gateway"}),
    "plugins": frozenset({"domain", "version", "settings", "telemetry", "gateway", "services"}),
    # The web pages and REST API (issue 19): beside plugins, on services; state only through them.
    "backstage": frozenset({"domain", "version", "settings", "telemetry", "gateway", "services"}),
    "bot": frozenset(PRODUCT_BELOW_BOT),
    "sandbox": frozenset(),
    "demo": frozenset(FIRST_PARTY),
    "bench": frozenset(FIRST_PARTY),
    "tests": frozenset(FIRST_PARTY),
}


def layer_violations(edges: list[Edge]) -> list[str]:
    problems = []
    for edge in edges:
        source, target = edge.source.split(".")[0], edge.target.split(".")[0]
        if source != target and target not in ALLOWED[source]:
            problems.append(f"{edge.file}:{edge.line}: {edge.source} imports {edge.target} "
                            f"({source} may import only {sorted(ALLOWED[source]) or 'nothing of the project'})")
    return problems


def test_every_top_level_package_has_a_layer():
    assert set(ALLOWED) == set(FIRST_PARTY)


def test_no_module_imports_a_higher_layer():
    edges = import_edges(module_files(ROOT), ROOT)
    assert len(edges) > 200  # the scan sees the tree
    assert layer_violations(edges) == []


@pytest.mark.parametrize(("source", "target"), [
    ("services.incidents", "plugins.base"),      # the upward import issue 16 removed
    ("plugins.incidents", "storage.sqlite"),     # a plugin reading the store itself
    ("gateway.cards", "services.incidents"),
    ("domain.models", "gateway.models"),
    ("sandbox.state", "gateway.models"),         # the stand-in sharing the bot's code
    ("storage.sqlite", "telemetry"),
])
def test_the_rule_catches(source, target):
    assert layer_violations([Edge(source, target, "x.py", 1)])


@pytest.mark.parametrize(("source", "target"), [
    ("plugins.incidents", "services.incidents"), ("services.incidents", "storage.base"),
    ("bot", "plugins.incidents"), ("tests.e2e.conftest", "sandbox.app"), ("gateway.cards", "domain.models"),
])
def test_the_rule_allows(source, target):
    assert layer_violations([Edge(source, target, "x.py", 1)]) == []
