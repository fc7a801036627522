"""The ICE servers a browser gets: the STUN servers, and the TURN servers with
time-limited credentials in coturn's REST format (``use-auth-secret``):

* username   = ``"<expiry unix time>:<user id>"``
* credential = base64(HMAC-SHA1(static-auth-secret, username))

coturn recomputes the credential from the username and refuses it after the expiry, so the
secret never leaves the server and a leaked credential dies by itself (docs/operations.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from xietong.config import LiveSettings


def turn_credentials(secret: str, user_id: int, expiry: int) -> tuple[str, str]:
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(settings: LiveSettings, user_id: int, at: datetime) -> list[dict[str, Any]]:
    """The RTCPeerConnection ``iceServers`` for ``user_id`` at ``at``; TURN only when both
    its URLs and its secret are set."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        expiry = int(at.timestamp()) + settings.turn_ttl_seconds
        username, credential = turn_credentials(settings.turn_secret, user_id, expiry)
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return servers
