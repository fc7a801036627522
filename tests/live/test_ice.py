"""ICE servers and coturn REST credentials, checked against the formula."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from xietong.config import LiveSettings
from xietong.live.ice import ice_servers, turn_credentials

AT = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def test_turn_credentials_follow_coturn_rest_format() -> None:
    username, credential = turn_credentials("s3cret", 42, 1_800_000_000)
    assert username == "1800000000:42"
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"1800000000:42", hashlib.sha1).digest()
    ).decode()
    assert credential == expected


def test_ice_servers_give_stun_and_time_limited_turn() -> None:
    settings = LiveSettings(
        stun_urls=["stun:turn.example.org:3478"],
        turn_urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
        turn_secret="static-secret",
        turn_ttl_seconds=3600,
    )
    stun, turn = ice_servers(settings, 7, AT)
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    expiry = int(AT.timestamp()) + 3600
    assert turn["urls"] == settings.turn_urls
    assert turn["username"] == f"{expiry}:7"
    digest = hmac.new(b"static-secret", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()


def test_no_turn_without_a_secret_and_nothing_by_default() -> None:
    assert ice_servers(LiveSettings(), 1, AT) == []
    only_urls = LiveSettings(turn_urls=["turn:x:3478"])
    assert ice_servers(only_urls, 1, AT) == []
