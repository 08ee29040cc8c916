"""Command Center's version, reported as ``pluginVersion`` in telemetry and shown in logs."""

__version__ = "0.1.0"
