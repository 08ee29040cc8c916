"""A Mattermost-compatible server (REST v4, WebSocket, integration callbacks) for tests,
demos and benchmarks. See sandbox/README.md."""

from .app import Sandbox, SandboxConfig
from .faults import FaultEvent, FaultInjector, FaultRule
from .records import Callback, Exchange
from .seed import Seed, SeedError, load_seed
from .simulate import ActionResult, CommandResult, DialogResult, SandboxHTTPError, SimUser

__all__ = [
    "ActionResult", "Callback", "CommandResult", "DialogResult", "Exchange", "FaultEvent", "FaultInjector",
    "FaultRule", "Sandbox",
    "SandboxConfig", "SandboxHTTPError", "Seed", "SeedError", "SimUser", "load_seed",
]
