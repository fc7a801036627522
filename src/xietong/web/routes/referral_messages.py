"""The referral's messages under /api/v1/referrals/{id}/messages: read (with ``after``;
live clients follow ``referral:<id>`` on /ws), post a text (JSON) or a file with an
optional caption (multipart), and the attachments themselves
(:mod:`xietong.web.routes.conversation_api`). Who may do what is decided in
:mod:`xietong.referral.service.messages`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from xietong.referral.service import messages as svc
from xietong.web.deps import current_principal
from xietong.web.routes.conversation_api import ConversationService, add_conversation_routes

router = APIRouter(
    prefix="/api/v1/referrals",
    tags=["referral messages"],
    dependencies=[Depends(current_principal)],
)
UPLOAD_PATHS = (r"^/api/v1/referrals/\d+/messages/files$",)

add_conversation_routes(
    router,
    "referral_id",
    ConversationService(
        read=svc.read_messages,
        post=svc.post_message,
        attachment=svc.message_attachment,
        render=svc.message_out,
    ),
)
