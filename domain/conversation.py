"""What a message in plain words to the bot is about: trouble, thanks, or something else.

Someone in a hurry writes "hi, the website is down, what do I do?" rather than a command. This
reads the words only to choose a helpful answer (offer to start an incident, say you're welcome,
point at the commands); it never acts on them.
"""

from __future__ import annotations

import enum
import re


class Intent(enum.Enum):
    TROUBLE = "trouble"
    THANKS = "thanks"
    OTHER = "other"


_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
#: Words that mean something is wrong (compared after lower-casing; plurals and -ing forms listed).
TROUBLE_WORDS = frozenset("""
    down outage outages broken broke break breaking error errors erroring fail fails failing failed failure
    failures fire fires burning incident incidents urgent urgently help emergency sev sev0 sev1 sev2 p0 p1
    crash crashed crashes crashing alert alerts alerting paged pager unavailable unreachable timeout timeouts
    dead died dying hacked breach leak leaked leaking attack attacked ddos slow degraded bug wrong
    problem problems issue issues stuck offline 5xx 404s 500s 502s 503s 504s
""".split())
_TROUBLE_PHRASES = ("not working", "doesn't work", "does not work", "isn't working", "is not working", "can't log",
                    "cannot log", "can't access", "cannot access", "what do i do", "what should i do")
_HTTP_5XX = re.compile(r"^5[0-9][0-9]s?$")
THANK_WORDS = frozenset("thanks thank thx ty tysm cheers merci danke gracias kudos appreciated".split())


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def intent_of(text: str) -> Intent:
    """Trouble wins over thanks ("thanks, but it is still down" needs an incident, not a smile)."""
    lowered = " ".join(text.lower().replace("\u2019", "'").split())
    words = words_of(lowered)
    if any(word in TROUBLE_WORDS or _HTTP_5XX.match(word) for word in words) \
            or any(phrase in lowered for phrase in _TROUBLE_PHRASES):
        return Intent.TROUBLE
    if any(word in THANK_WORDS for word in words):
        return Intent.THANKS
    return Intent.OTHER


__all__ = ["THANK_WORDS", "TROUBLE_WORDS", "Intent", "intent_of", "words_of"]
