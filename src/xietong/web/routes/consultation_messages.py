"""The consultation's messages under /api/v1/consultations/{id}/messages: read (with
``after``; live clients follow the conversation on /ws instead, docs/messaging.md), post a
text (JSON) or a file with an optional caption (multipart), and the attachments themselves.
Who may do what is decided in :mod:`xietong.consultation.service.messages`.

A resend with the same ``client_id`` answers 200 with the first message instead of 201.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from xietong.consultation import service as svc
from xietong.consultation.schemas import MessageIn, MessageOut, ThreadOut
from xietong.consultation.service.messages import message_out
from xietong.core.validation import MAX_ID
from xietong.identity.service import display_names
from xietong.messaging.service import MAX_PAGE, MAX_TEXT, Attachment
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.files import blob_response

router = APIRouter(
    prefix="/api/v1/consultations",
    tags=["consultation messages"],
    dependencies=[Depends(current_principal)],
)

ConsultationId = Annotated[int, Path(ge=1, le=MAX_ID)]
Seq = Annotated[int, Path(ge=1, le=MAX_ID)]
App = Annotated[AppServices, Depends(services)]
UPLOAD_PATHS = (r"^/api/v1/consultations/\d+/messages/files$",)


def thread_out(thread: svc.Thread) -> dict[str, Any]:
    c = thread.consultation
    return {
        "items": [message_out(c.id, m, thread.names) for m in thread.messages],
        "last_seq": thread.last_seq,
        "can_post": thread.can_post,
        "read_positions": [
            {
                "user_id": p.user_id,
                "name": thread.names.get(p.user_id),
                "last_read_seq": p.last_read_seq,
                "read_at": p.read_at,
            }
            for p in thread.positions
        ],
    }


@router.get("/{consultation_id}/messages", response_model=ThreadOut)
def read_messages(
    consultation_id: ConsultationId,
    session: DbSession,
    principal: CurrentPrincipal,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Messages after sequence number ``after``, oldest first; reading moves your read
    position (the others see it as a read receipt)."""
    return thread_out(
        svc.read_messages(session, principal, consultation_id, after=after, limit=limit)
    )


def _posted(
    posted: Any, consultation_id: int, response: Response, session: DbSession
) -> dict[str, Any]:
    if not posted.created:
        response.status_code = 200
    m = posted.message
    names = display_names(session, [m.sender_user_id])
    return message_out(consultation_id, m, names)


@router.post("/{consultation_id}/messages", response_model=MessageOut, status_code=201)
def post_message(
    consultation_id: ConsultationId,
    body: MessageIn,
    response: Response,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    posted = svc.post_message(
        session, principal, consultation_id, text=body.text, client_id=body.client_id
    )
    return _posted(posted, consultation_id, response, session)


@router.post("/{consultation_id}/messages/files", response_model=MessageOut, status_code=201)
def post_file(
    consultation_id: ConsultationId,
    response: Response,
    session: DbSession,
    principal: CurrentPrincipal,
    app: App,
    file: Annotated[UploadFile, File(description="A JPEG, PNG or HEIC photo, or a PDF")],
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    client_id: Annotated[str | None, Form(max_length=64)] = None,
) -> dict[str, Any]:
    """A photo or PDF, vetted like clinical documents, with an optional caption."""
    limit = app.settings.upload.max_document_bytes
    attachment = Attachment(file.filename or "", file.content_type, file.file.read(limit + 1))
    posted = svc.post_message(
        session,
        principal,
        consultation_id,
        text=text,
        client_id=client_id,
        attachment=attachment,
        blobs=app.blobs,
        limits=app.settings.upload,
    )
    return _posted(posted, consultation_id, response, session)


@router.get("/{consultation_id}/messages/{seq}/attachment")
def attachment(
    consultation_id: ConsultationId,
    seq: Seq,
    session: DbSession,
    principal: CurrentPrincipal,
    app: App,
) -> StreamingResponse:
    content = svc.message_attachment(session, principal, consultation_id, seq)
    return blob_response(
        app.blobs,
        content.blob_key,
        content.media_type,
        filename=content.filename,
        sha256=content.sha256,
    )


@router.get("/{consultation_id}/messages/{seq}/thumbnail")
def thumbnail(
    consultation_id: ConsultationId,
    seq: Seq,
    session: DbSession,
    principal: CurrentPrincipal,
    app: App,
) -> StreamingResponse:
    content = svc.message_attachment(session, principal, consultation_id, seq, thumbnail=True)
    return blob_response(app.blobs, content.blob_key, content.media_type)
