"""The two OAuth settings of "Sign in with Mattermost" (issue 19): both or neither, a clear start-up
error naming the missing one; and the backstage command's words."""

from __future__ import annotations

import pytest

from gateway.messages import USAGES, check_words
from settings import SettingsError, load_settings

pytestmark = pytest.mark.fast
BASE = {"mattermost_url": "http://chat.example.com", "bot_token": "t"}


@pytest.mark.parametrize(("given", "missing"), [({"oauth_client_id": "a" * 26}, "CC_OAUTH_CLIENT_SECRET"),
                                                 ({"oauth_client_secret": "s"}, "CC_OAUTH_CLIENT_ID")])
def test_one_oauth_setting_without_the_other_stops_the_start(given, missing):
    with pytest.raises(SettingsError) as raised:
        load_settings(**BASE, **given)
    assert f"{missing} is not" in str(raised.value) and "set both" in str(raised.value)


def test_both_or_neither_is_fine_and_the_client_id_is_a_mattermost_id():
    assert not load_settings(**BASE).oauth_configured
    assert not load_settings(**BASE, oauth_client_id="", oauth_client_secret="").oauth_configured
    assert load_settings(**BASE, oauth_client_id="a" * 26, oauth_client_secret="s").oauth_configured
    with pytest.raises(SettingsError) as raised:
        load_settings(**BASE, oauth_client_id="not an id", oauth_client_secret="s")
    assert "CC_OAUTH_CLIENT_ID" in str(raised.value)


def test_the_backstage_command_takes_no_words():
    assert "backstage" in USAGES and USAGES["backstage"].in_help
    check_words("backstage", [], "/incident ")
    with pytest.raises(Exception, match="backstage"):
        check_words("backstage", ["now"], "/incident ")
