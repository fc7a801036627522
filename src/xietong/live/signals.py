"""What a WebRTC signaling message may carry between two peers of a session: an SDP offer
or answer, or one ICE candidate; to the SFU also ``{"watch": true}`` (a participant
without camera or microphone receives the others without publishing). Everything else is
refused before it is relayed, so a peer can neither flood another with large blobs nor
smuggle other fields through.

The limits are generous for real browsers (an offer with audio, video and a screen is a
few KiB) and small enough that a relay costs nothing.
"""

from __future__ import annotations

import re
from typing import Any

from xietong.core.errors import N_, Invalid
from xietong.core.validation import MAX_ID, has_control_characters

SDP_MAX = 64 * 1024
CANDIDATE_MAX = 2048
MID_MAX = 64
PEER = re.compile(r"[A-Za-z0-9_-]{1,64}")
# The SFU is addressed as this peer in a Janus session (docs/live.md).
SFU_PEER = "sfu"
SDP_TYPES = frozenset({"offer", "answer"})


def invalid(field: str, message: str = N_("A value is not valid.")) -> Invalid:
    return Invalid(message, code="frame_invalid", field=field)


def session_id(frame: dict[str, Any]) -> int:
    value = frame.get("session")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise invalid("session", N_("The session is a positive number."))
    return value


def peer_id(value: Any, field: str = "to") -> str:
    if not isinstance(value, str) or not PEER.fullmatch(value):
        raise invalid(field, N_("A peer is named by its id."))
    return value


def flag(frame: dict[str, Any], name: str) -> bool:
    value = frame.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name, N_("This is true or false."))
    return value


def _text(value: Any, field: str, limit: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(field, N_("This text is missing or too long."))
    bad = value.replace("\r\n", "") if multiline else value
    if has_control_characters(bad) or (not multiline and ("\n" in bad or "\r" in bad)):
        raise invalid(field, N_("Control characters are not allowed."))
    return value


def _sdp(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"type", "sdp"}:
        raise invalid("data.sdp")
    kind = value["type"]
    if kind not in SDP_TYPES:
        raise invalid("data.sdp.type")
    text = value["sdp"]
    if isinstance(text, str) and len(text.encode("utf-8")) > SDP_MAX:
        raise invalid("data.sdp.sdp", N_("The SDP is larger than 64 KiB."))
    return {"type": kind, "sdp": _text(text, "data.sdp.sdp", SDP_MAX, multiline=True)}


def _candidate(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None  # the end of the candidates
    allowed = {"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"}
    if not isinstance(value, dict) or not set(value) <= allowed or "candidate" not in value:
        raise invalid("data.candidate")
    out: dict[str, Any] = {
        "candidate": _text(value["candidate"], "data.candidate.candidate", CANDIDATE_MAX)
    }
    mid = value.get("sdpMid")
    out["sdpMid"] = None if mid is None else _text(mid, "data.candidate.sdpMid", MID_MAX)
    index = value.get("sdpMLineIndex")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 255
    ):
        raise invalid("data.candidate.sdpMLineIndex")
    out["sdpMLineIndex"] = index
    fragment = value.get("usernameFragment")
    if fragment is not None:
        out["usernameFragment"] = _text(fragment, "data.candidate.usernameFragment", 256)
    return out


def signal_data(value: Any) -> dict[str, Any]:
    """The ``data`` of a ``live.signal``: exactly one of ``sdp``, ``candidate`` and
    ``watch`` (which must be true, and is for the SFU only: the caller checks)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise invalid("data", N_("A signal carries one SDP or one ICE candidate."))
    if "watch" in value:
        if value["watch"] is not True:
            raise invalid("data.watch", N_("This is true or false."))
        return {"watch": True}
    if "sdp" in value:
        return {"sdp": _sdp(value["sdp"])}
    if "candidate" in value:
        return {"candidate": _candidate(value["candidate"])}
    raise invalid("data", N_("A signal carries one SDP or one ICE candidate."))
