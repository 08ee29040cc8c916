"""The Mattermost OpenAPI document: where it is, loading it once, and small helpers to patch it.

``load_spec()`` returns a private copy of the unmodified ``../shared/mattermost-api/openapi-v4.yaml``
(relative to the repo root); errata.py corrects it, checker.py validates against the result.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# The spec lives in the steering checkout's sibling ``shared/``; a git worktree sits one level deeper.
_SPEC_PARTS = ("shared", "mattermost-api", "openapi-v4.yaml")
SPEC_PATH = next((base.joinpath(*_SPEC_PARTS) for base in REPO_ROOT.parents if base.joinpath(*_SPEC_PARTS).exists()),
                 REPO_ROOT / ".." / "shared" / "mattermost-api" / "openapi-v4.yaml")
DEFAULT_BASE_URL = "http://127.0.0.1:8065"

Spec = dict[str, Any]


@functools.lru_cache(maxsize=1)
def _raw_spec() -> Spec:
    # The C loader parses the 850 kB file in ~0.15 s (the pure-Python one takes seconds).
    with open(SPEC_PATH, "rb") as f:
        return yaml.load(f, Loader=yaml.CSafeLoader)


def load_spec() -> Spec:
    """Return a private deep copy of the unmodified OpenAPI document (parsed once per process)."""
    return copy.deepcopy(_raw_spec())


# ---------------------------------------------------------------------------------------------
# Small schema helpers for the patches


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def typed(type_: str, **kw: Any) -> dict:
    return {"type": type_, **kw}


STR, INT, BOOL, OBJ = typed("string"), typed("integer", format="int64"), typed("boolean"), typed("object")
NSTR = typed("string", nullable=True)
NBOOL = typed("boolean", nullable=True)


def obj(props: Mapping[str, dict], required: Sequence[str] = ()) -> dict:
    schema: dict = {"type": "object", "properties": dict(props)}
    if required:
        schema["required"] = list(required)
    return schema


def schemas_of(spec: Spec) -> dict:
    return spec["components"]["schemas"]


def operation_of(spec: Spec, method: str, path: str) -> dict:
    return spec["paths"][path][method]


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def operations(spec: Spec) -> Iterable[dict]:
    for item in spec["paths"].values():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield op


def add_props(spec: Spec, schema: str, props: Mapping[str, dict]) -> None:
    schemas_of(spec)[schema].setdefault("properties", {}).update(props)


def json_response(schema: dict, description: str = "") -> dict:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}
