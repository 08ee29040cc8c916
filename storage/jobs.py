"""Scheduled jobs as the store keeps them (the scheduler's table; see services/scheduler.py).

A job's life::

    pending ──claim──▶ claimed ──begin delivery──▶ (delivering) ──complete──▶ done
       ▲                  │  │                          │
       └──── retry ───────┘  └─ lease expires ─▶ claimable again, told whether delivery began
    pending/claimed ──cancel──▶ cancelled        claimed ──fail──▶ failed

- **One pending job per (kind, key)**: scheduling a key again cancels its pending job and
  inserts the new one (a new id), so "the next reminder of an incident" simply moves.
- **Claim**: one transaction moves due pending jobs (and claimed ones whose lease expired) to
  claimed, each with a fresh random ``token`` and ``lease_until``. Every later step names the
  token and succeeds only while it is still the job's current one (a fencing token), so a holder
  whose lease was taken over can change nothing.
- **Delivery marker**: ``begin_job_delivery`` records, before the side effect, that it may have
  happened (``delivery_started_at``). A job reclaimed after its lease expired therefore says
  whether its side effect is known not to have happened (no marker) or may have
  (``maybe_delivered``); the scheduler then asks the handler's delivery check (the job id is the
  idempotency key) instead of repeating it blindly.
- **Retry**: an attempt that ended with an error (the handler raised) is given back as pending
  with a later due time and the marker cleared: its outcome is known, not lost in a crash.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Largest payload, as compact JSON: a job carries ids, not content.
PAYLOAD_MAX_BYTES = 2048


class JobState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


#: States a job does not leave again.
FINISHED = frozenset({JobState.DONE, JobState.CANCELLED, JobState.FAILED})
#: States a cancel applies to.
LIVE = frozenset({JobState.PENDING, JobState.CLAIMED})


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled job (a copy: changing it changes nothing stored)."""

    id: str
    kind: str
    key: str
    due_at: int
    created_at: int
    state: JobState = JobState.PENDING
    incident_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    claimed_by: str | None = None
    token: str | None = None
    lease_until: int | None = None
    delivery_started_at: int | None = None
    fired_at: int | None = None
    finished_at: int | None = None
    late: bool = False
    last_error: str | None = None

    @property
    def maybe_delivered(self) -> bool:
        """Whether an earlier attempt began delivering (its side effect may have happened)."""
        return self.delivery_started_at is not None


def payload_json(payload: Mapping[str, Any] | None) -> str:
    """The payload as compact JSON (ValueError if it is not a small JSON object)."""
    if payload is None:
        return "{}"
    if not isinstance(payload, Mapping):
        raise ValueError("a job payload is a JSON object")
    text = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > PAYLOAD_MAX_BYTES:
        raise ValueError(f"a job payload holds ids only (at most {PAYLOAD_MAX_BYTES} bytes of JSON)")
    return text


def short_error(error: str | None) -> str | None:
    """An error text as stored (bounded)."""
    return None if error is None else error[:500]


def check_selector(job_id: str | None, kind: str | None, key: str | None, incident_id: str | None) -> None:
    """``cancel_jobs`` takes exactly one of: a job id, a kind and key, an incident id."""
    chosen = [job_id is not None, kind is not None or key is not None, incident_id is not None]
    if sum(chosen) != 1 or ((kind is None) != (key is None)):
        raise ValueError("cancel_jobs takes exactly one of job_id=, kind= with key=, incident_id=")


def finished_states(states: Collection[JobState] | None) -> frozenset[JobState]:
    """The finished states a prune applies to (all of them when None); ValueError for a live one."""
    if states is None:
        return FINISHED
    chosen = frozenset(JobState(s) for s in states)
    if not chosen <= FINISHED:
        raise ValueError("only done, cancelled and failed jobs can be pruned")
    return chosen


__all__ = ["FINISHED", "LIVE", "PAYLOAD_MAX_BYTES", "Job", "JobState", "check_selector", "finished_states", "payload_json",
           "short_error"]
