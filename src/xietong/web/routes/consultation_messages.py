"""The consultation's messages under /api/v1/consultations/{id}/messages: read (with
``after``; live clients follow the conversation on /ws instead, docs/messaging.md), post a
text (JSON) or a file with an optional caption (multipart), and the attachments themselves
(:mod:`xietong.web.routes.conversation_api`). Who may do what is decided in
:mod:`xietong.consultation.service.messages`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from xietong.consultation import service as svc
from xietong.consultation.service.messages import message_out
from xietong.web.deps import current_principal
from xietong.web.routes.conversation_api import ConversationService, add_conversation_routes

router = APIRouter(
    prefix="/api/v1/consultations",
    tags=["consultation messages"],
    dependencies=[Depends(current_principal)],
)
UPLOAD_PATHS = (r"^/api/v1/consultations/\d+/messages/files$",)

add_conversation_routes(
    router,
    "consultation_id",
    ConversationService(
        read=svc.read_messages,
        post=svc.post_message,
        attachment=svc.message_attachment,
        render=message_out,
    ),
)
