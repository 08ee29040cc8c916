"""Leases as the store keeps them: one replica at a time does a named job (docs/replicas.md).

A lease is a row (name, holder, epoch, expires_at). Its holder keeps it by renewing it before it
expires; once expired, any replica may acquire it. Every change is one compare-and-set:

- **acquire** succeeds when there is no row, when it has expired at ``now``, or when the caller
  already holds it (a restarted replica with the same id); the epoch grows by one every time;
- **renew** extends it only for the same holder *and* the same epoch (so a holder that lost it and
  got it back is never confused with its older self);
- **release** makes it free at once (the epoch stays, so it never goes back).

The epoch is the fencing token: work done under a lease can be checked against the current epoch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease as stored (a copy)."""

    name: str
    holder: str
    epoch: int
    expires_at: int

    def valid_at(self, now: int) -> bool:
        return now < self.expires_at


def check_lease_args(name: str, holder: str, ttl_ms: int | None = None) -> None:
    """Leases need a name, a holder and a positive length."""
    if not name or not holder:
        raise ValueError("a lease needs a name and a holder")
    if ttl_ms is not None and ttl_ms <= 0:
        raise ValueError("a lease lasts a positive number of milliseconds")


__all__ = ["Lease", "check_lease_args"]
