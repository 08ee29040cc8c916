"""Issue 20, the list's name search on every backend: the semantics SQLite's LIKE gives, checked
against a match made by hand, for terms of every length the PostgreSQL store treats differently
(1-2 characters: a plain substring test; 3 or more: a LIKE its trigram index may serve).

A name matches when the term is a substring of it with ASCII letters folded and nothing else
folded; LIKE's wildcards (``%``, ``_``) and its escape character (``\\``) in a term are literal.
The order and the paging of the matches are the list's own, and the total counts every match the
viewer may see. Each search runs many times (more than the five after which a cached PostgreSQL
statement may turn to a generic plan), so a plan made for one term never answers for another.
"""

from __future__ import annotations

import string

import pytest

from domain import incidents
from domain.models import IncidentStatus
from storage import IncidentSort

from .builders import T0, incident, playbook

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

NAMES = [
    "DB down", "db replica lag", "API 500s", "api incident 12", "Queue stuck", "100% CPU", "Disk_full",
    "back\\slash", "a_c literal", "abc plain", "Émile outage", "émile lower", "İstanbul DC", "istanbul dc",
    "STRASSE", "Straße", "x-y z", "db-api", "...", "%%", "Ä umlaut", "ä lower", "Kelvin \u212a sign",
    *(f"Filler incident {n}" for n in range(40)),
]

TERMS = [
    # one and two characters
    "d", "D", "db", "dB", "_", "%", "%%", "\\", ".", "..", "-", "1", "ß", "ä", "Ä", "é", "k", "\u212a",
    # three and more
    "DB down", "a_c", "a%c", "abc", "k\\s", "\\\\", "100%", "0% c", "émile", "Émile", "mile", "İst",
    "ist", "ISTANBUL", "strasse", "x-y", "x y", "y z", "...", "....", "incident", "INCIDENT 1",
    "filler incident 3", "zzz", "api incident 1", "kelvin \u212a", "a\x00b", "x" * 400,
]


def matches(name: str, term: str) -> bool:
    return term.translate(_FOLD) in name.translate(_FOLD)


@pytest.fixture
async def made(store):
    """The names above in team1 (every third private, every fifth ended) and one of them in team2."""
    pb = await store.create_playbook(playbook())
    created = []
    for n, name in enumerate(NAMES):
        inc, events = incident(pb, name=name, public=n % 3 != 0, now=T0 + n * 1000 - (n % 4) * 1000,
                               creator="alice" if n % 2 else "bob")
        if n % 5 == 0:
            inc, more = incidents.end_incident(inc, "alice", T0 + 500_000)
            events += more
        await store.create_incident(inc, events)
        created.append(inc)
    other, events = incident(playbook(team_id="team2"), name="DB down elsewhere")
    await store.create_incident(other, events)
    return created


def expected(made, term, *, viewer=(), admin=False, sort=IncidentSort.CREATED_DESC, status=None):
    """The ids a list must show, in order: seq (insertion order) breaks ties, as in every store."""
    rows = [(n, i) for n, i in enumerate(made)
            if (admin or i.public or i.channel_id in viewer) and (status is None or i.status == status)
            and matches(i.name, term)]
    if sort is IncidentSort.CREATED_DESC:
        rows.sort(key=lambda r: (r[1].created_at, r[0]), reverse=True)
    elif sort is IncidentSort.CREATED_ASC:
        rows.sort(key=lambda r: (r[1].created_at, r[0]))
    else:
        rows.sort(key=lambda r: (r[1].name.translate(_FOLD), r[0]), reverse=sort is IncidentSort.NAME_DESC)
    return [i.id for _, i in rows]


async def all_pages(store, term, per_page, **kwargs):
    """Every page of the search, and the total each page said."""
    ids, totals, page = [], set(), 0
    while True:
        found = await store.list_incidents("team1", search=term, page=page, per_page=per_page, **kwargs)
        totals.add(found.total)
        ids += [i.id for i in found.items]
        if len(found.items) < per_page:
            return ids, totals
        page += 1


async def test_every_term_matches_like_sqlite_in_the_lists_order_and_pages(store, made):
    private = [i.channel_id for i in made if not i.public]
    viewer = private[::2] + ["unrelated"]
    for term in TERMS:
        for kwargs in ({"viewer_channel_ids": viewer}, {"is_admin": True}):
            for sort in IncidentSort:
                want = expected(made, term, viewer=viewer, admin=kwargs.get("is_admin", False), sort=sort)
                ids, totals = await all_pages(store, term, 4, sort=sort, **kwargs)
                assert (ids, totals) == (want, {len(want)}), (term, kwargs, sort)


async def test_the_references_and_the_filters_agree_with_the_search(store, made):
    viewer = [i.channel_id for i in made if not i.public][1::2]
    for term in TERMS:
        refs = await store.list_incident_refs("team1", viewer_channel_ids=viewer, search=term,
                                              sort=IncidentSort.NAME_ASC, per_page=500)
        assert [r.id for r in refs.items] == expected(made, term, viewer=viewer, sort=IncidentSort.NAME_ASC), term
        assert refs.total == len(refs.items)
        ongoing = await store.list_incidents("team1", is_admin=True, search=term, status=IncidentStatus.ONGOING,
                                             per_page=100)
        assert [i.id for i in ongoing.items] == expected(made, term, admin=True, status=IncidentStatus.ONGOING), term
        assert ongoing.total == len(ongoing.items)


async def test_only_ascii_letters_fold(store, made):
    admin = {"is_admin": True, "per_page": 100}

    async def found(term):
        return sorted(i.name for i in (await store.list_incidents("team1", search=term, **admin)).items)

    assert await found("ISTANBUL") == ["istanbul dc"]  # "İ" is not "I" folded
    assert await found("İst") == ["İstanbul DC"]
    assert await found("émile") == ["émile lower"] and await found("Émile") == ["Émile outage"]
    assert await found("STRASSE") == ["STRASSE"]  # "ß" is not "ss"
    assert await found("Ä") == ["Ä umlaut"] and await found("ä") == ["ä lower"]
    assert await found("kelvin \u212a") == ["Kelvin \u212a sign"]  # the Kelvin sign is not "k"
    assert await found("\u212a") == ["Kelvin \u212a sign"]


async def test_wildcards_and_the_escape_character_are_literal(store, made):
    admin = {"is_admin": True, "per_page": 100}

    async def found(term):
        return sorted(i.name for i in (await store.list_incidents("team1", search=term, **admin)).items)

    assert await found("a_c") == ["a_c literal"]  # not "abc plain"
    assert await found("a%c") == []
    assert await found("_") == ["Disk_full", "a_c literal"]
    assert await found("%%") == ["%%"] and await found("%") == ["%%", "100% CPU"]
    assert await found("\\") == ["back\\slash"] and await found("k\\s") == ["back\\slash"]
    assert await found("\\\\") == []
    assert await found("...") == ["..."] and await found("....") == []


async def test_hostile_terms_match_nothing_and_fail_nowhere(store, made):
    for term in ("a\x00b", "\x00", "x" * 5000, "%" * 600, "_" * 600, "\\" * 600, "' OR 1=1 --"):
        page = await store.list_incidents("team1", is_admin=True, search=term)
        assert (page.total, page.items) == (0, []), term[:20]


async def test_a_changed_name_is_found_by_its_new_words_at_once(store, made):
    """The team's list generation moves with a name, so no count made for the old name is reused."""
    first = made[0]
    before = await store.list_incidents("team1", is_admin=True, search="renamed outage")
    assert before.total == 0
    await store.mutate_incident(first.id, lambda i: (i.model_copy(update={"name": "Renamed outage"}), []))
    after = await store.list_incidents("team1", is_admin=True, search="renamed outage")
    assert [i.id for i in after.items] == [first.id] and after.total == 1
    assert (await store.list_incidents("team1", is_admin=True, search="db down")).total == 0
