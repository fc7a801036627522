"""The consultation's use cases. Services flush, never commit; each checks access and
audits (docs/consultation.md)."""

from xietong.consultation.service.common import Opened, open_consultation, parts_of
from xietong.consultation.service.deadlines import (
    DeadlineRun,
    Recommendation,
    expire_overdue,
    recommend_experts,
)
from xietong.consultation.service.messages import (
    AttachmentContent,
    Thread,
    message_attachment,
    post_message,
    read_messages,
)
from xietong.consultation.service.printable import (
    InstitutionHeader,
    PrintableReport,
    PrintedExpert,
    printable_report,
)
from xietong.consultation.service.reading import (
    MAX_LIMIT,
    consultation_out,
    get_consultation,
    linked_consultation,
    list_consultations,
    summaries_out,
    summary_out,
)
from xietong.consultation.service.reports import (
    amend_report,
    canonical_content,
    complete,
    content_hash,
    opinions,
    reports,
    sign_report,
    write_opinion,
)
from xietong.consultation.service.requests import (
    Created,
    accept,
    create_consultation,
    resubmit,
    schedule,
    simple_action,
    start,
    submit,
)
from xietong.consultation.service.session_times import (
    SessionSlot,
    SessionTimes,
    SlotExpert,
    propose_session_times,
)

__all__ = [
    "MAX_LIMIT",
    "AttachmentContent",
    "Created",
    "DeadlineRun",
    "InstitutionHeader",
    "Opened",
    "PrintableReport",
    "PrintedExpert",
    "Recommendation",
    "SessionSlot",
    "SessionTimes",
    "SlotExpert",
    "Thread",
    "accept",
    "amend_report",
    "canonical_content",
    "complete",
    "consultation_out",
    "content_hash",
    "create_consultation",
    "expire_overdue",
    "get_consultation",
    "linked_consultation",
    "list_consultations",
    "message_attachment",
    "open_consultation",
    "opinions",
    "parts_of",
    "post_message",
    "printable_report",
    "propose_session_times",
    "read_messages",
    "recommend_experts",
    "reports",
    "resubmit",
    "schedule",
    "sign_report",
    "simple_action",
    "start",
    "submit",
    "summaries_out",
    "summary_out",
    "write_opinion",
]
