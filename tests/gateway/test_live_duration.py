"""The live card's coarse duration and its schedule (gateway.messages, services.livecard)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.messages import format_live_duration, next_live_duration_change
from services import livecard

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def test_cadence_examples():
    assert format_live_duration(0) == format_live_duration(59_999) == "<1m"
    assert format_live_duration(3 * MIN + 59_000) == "3m"
    assert format_live_duration(HOUR + 9 * MIN) == "1h 5m"
    assert format_live_duration(DAY + 3 * HOUR + 59 * MIN) == "1d 3h"
    assert next_live_duration_change(3 * MIN + 1) == 4 * MIN
    assert next_live_duration_change(HOUR + 1) == HOUR + 5 * MIN
    assert next_live_duration_change(DAY + 1) == DAY + HOUR


@given(st.integers(min_value=0, max_value=400 * DAY))
def test_the_text_changes_exactly_at_the_next_change_and_not_before(elapsed):
    change = next_live_duration_change(elapsed)
    assert change > elapsed
    assert format_live_duration(change - 1) == format_live_duration(elapsed)
    assert format_live_duration(change) != format_live_duration(elapsed)
    # Coarse: at most one change a minute, one per 5 minutes after an hour, one an hour after a day.
    assert change - elapsed <= (MIN if elapsed < HOUR else 5 * MIN if elapsed < DAY else HOUR)


@given(st.text(min_size=1, max_size=30))
def test_spread_is_fixed_and_bounded(incident_id):
    offset = livecard.spread_offset_ms(incident_id)
    assert 0 <= offset < livecard.SPREAD_MS and offset == livecard.spread_offset_ms(incident_id)


def test_two_hundred_incidents_started_together_are_spread_over_the_window():
    offsets = sorted(livecard.spread_offset_ms(f"incident-{n:03d}") for n in range(200))
    per_second: dict[int, int] = {}
    for offset in offsets:
        per_second[offset // 1000] = per_second.get(offset // 1000, 0) + 1
    assert offsets[-1] - offsets[0] > livecard.SPREAD_MS * 0.9 and max(per_second.values()) <= 20
