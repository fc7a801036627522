"""The referral use cases. Services flush, never commit; each checks access and audits
(docs/referral.md)."""

from xietong.referral.service.common import Opened, open_referral, parts_of
from xietong.referral.service.deadlines import ReferralDeadlineRun, run_deadlines
from xietong.referral.service.down import (
    create_down,
    is_overdue,
    may_send_down,
    open_for_down,
    record_follow_up,
)
from xietong.referral.service.reading import (
    MAX_LIMIT,
    chain,
    get_referral,
    list_referrals,
    referral_out,
    referrals_of_patient,
    summaries_out,
)
from xietong.referral.service.requests import (
    Created,
    accept,
    attach_report,
    check_in,
    create_referral,
    decide,
    resubmit,
    simple_action,
)

__all__ = [
    "MAX_LIMIT",
    "Created",
    "Opened",
    "ReferralDeadlineRun",
    "accept",
    "attach_report",
    "chain",
    "check_in",
    "create_down",
    "create_referral",
    "decide",
    "get_referral",
    "is_overdue",
    "list_referrals",
    "may_send_down",
    "open_for_down",
    "open_referral",
    "parts_of",
    "record_follow_up",
    "referral_out",
    "referrals_of_patient",
    "resubmit",
    "run_deadlines",
    "simple_action",
    "summaries_out",
]
