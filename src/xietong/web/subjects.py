"""Which domains' subjects take part in live collaboration: registered once per app, so
that messaging and live can ask about a consultation, a referral or a group conversation
without importing them."""

from __future__ import annotations

from xietong.consultation import subjects as consultation_subjects
from xietong.messaging import group_messages
from xietong.referral import subjects as referral_subjects


def register_subjects() -> None:
    consultation_subjects.register()
    referral_subjects.register()
    group_messages.register()
