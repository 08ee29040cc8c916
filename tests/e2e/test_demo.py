"""The README's first command: the scripted demo runs and shows a whole incident."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_transcript_shows_a_whole_incident(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    result = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for expected in (
        "[town-square] alice: /incident help",
        "Created playbook **Payments outage** from the Service Outage template",
        "[file attached]",
        "title: Payments outage",
        "This incident has been started by @bob.",
        "> Payments API returns 502 for about a third of requests",
        "Duration: <1m",
        "-- the card, refreshed on its own:",
        "Duration: 3m",
        "[payments-502s] bob: /incident stage show 2",
        "#### Stage 2/3: Restore (0/4 done) · the active stage is 1: Respond  [Make this the active stage]",
        "@bob changed the commander to @alice.",
        "   | Check from outside: **status checks** and the [synthetic tests](https://status.example.com/synthetics).",
        "(only bob sees) ⬜ **1.1** Confirm the outage from outside",
        "@alice checked 1.1",
        "@bob ran 1.2 **Set the channel header to the outage status**",
        "the channel header is now: 🔴 Outage in progress",
        "@bob checked 1.2",
        "@alice moved the incident to stage 2/3: **Restore**.",
        "This incident has been ended by @alice.",
        "Status: Ended",
        "-- demo finished",
    ):
        assert expected in out, f"missing from the transcript: {expected}"
    # The duration moved on its own: shown by the card refreshed while nobody touched the incident.
    quiet = out.index("-- three quiet minutes pass")
    assert quiet < out.index("Duration: 3m", quiet) < out.index("-- bob looks ahead at stage 2")
    assert "Traceback" not in result.stderr
