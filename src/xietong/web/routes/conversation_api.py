"""The REST API of a subject's conversation, the same for every subject (a consultation's,
a referral's, a group conversation's): under ``<prefix>/{<id>}/messages`` read a page
(``after``, ``limit``), post a text (JSON) or a file with an optional caption (multipart),
and fetch an attachment or its thumbnail. The subject's service decides who may do what;
:func:`add_conversation_routes` only parses and answers.

A resend with the same ``client_id`` answers 200 with the first message instead of 201.
"""

# No ``from __future__ import annotations``: the routes are defined inside a function and
# FastAPI reads their annotations, which must be objects, not names of local variables.

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from xietong.core.validation import MAX_ID
from xietong.identity.service import display_names
from xietong.messaging.models import Message
from xietong.messaging.schemas import MessageIn, MessageOut, ThreadOut
from xietong.messaging.service import MAX_PAGE, MAX_TEXT, Attachment, Posted
from xietong.messaging.threads import AttachmentContent
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, services
from xietong.web.files import blob_response

Seq = Annotated[int, Path(ge=1, le=MAX_ID)]
After = Annotated[int, Query(ge=0, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
App = Annotated[AppServices, Depends(services)]


@dataclass(frozen=True)
class ConversationService:
    """A subject's message use cases; each takes ``(session, principal, subject_id, …)``."""

    # read(…, after=, limit=) -> a thread with messages, names, last_seq, can_post, positions
    read: Callable[..., Any]
    # post(…, text=, client_id=, attachment=, blobs=, limits=) -> Posted
    post: Callable[..., Posted]
    # attachment(…, seq, thumbnail=) -> AttachmentContent
    attachment: Callable[..., AttachmentContent]
    # render(subject_id, message, names) -> MessageOut
    render: Callable[[int, Message, dict[int, str]], dict[str, Any]]


def _path_id(name: str) -> Callable[..., int]:
    """A dependency reading the path parameter ``name`` (1 … MAX_ID), so that each subject
    keeps its own parameter name (``consultation_id``) in the schema and in errors."""

    def subject_id(**values: int) -> int:
        return values[name]

    parameter = inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[int, Path(ge=1, le=MAX_ID)],
    )
    subject_id.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    return subject_id


def uploaded(file: UploadFile, app: AppServices) -> Attachment:
    """The upload, read one byte past the limit so that vetting can refuse it (413)."""
    limit = app.settings.upload.max_document_bytes
    return Attachment(file.filename or "", file.content_type, file.file.read(limit + 1))


def thread_out(svc: ConversationService, subject_id: int, thread: Any) -> dict[str, Any]:
    """A page of the thread (ThreadOut)."""
    names: dict[int, str] = thread.names
    return {
        "items": [svc.render(subject_id, m, names) for m in thread.messages],
        "last_seq": thread.last_seq,
        "can_post": thread.can_post,
        "read_positions": [
            {
                "user_id": p.user_id,
                "name": names.get(p.user_id),
                "last_read_seq": p.last_read_seq,
                "read_at": p.read_at,
            }
            for p in thread.positions
        ],
    }


def posted_out(
    svc: ConversationService, subject_id: int, posted: Posted, response: Response, session: Session
) -> dict[str, Any]:
    """The message posted (201), or the first one for a resend (200)."""
    if not posted.created:
        response.status_code = 200
    m = posted.message
    return svc.render(subject_id, m, display_names(session, [m.sender_user_id]))


def add_conversation_routes(router: APIRouter, id_name: str, svc: ConversationService) -> None:
    """The five routes of a subject's conversation on ``router`` (which has the prefix)."""
    subject = Annotated[int, Depends(_path_id(id_name))]
    base = f"/{{{id_name}}}/messages"

    @router.get(base, response_model=ThreadOut)
    def read_messages(
        subject_id: subject,
        session: DbSession,
        principal: CurrentPrincipal,
        after: After = 0,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """Messages after sequence number ``after``, oldest first; reading moves your read
        position (the others see it as a read receipt)."""
        thread = svc.read(session, principal, subject_id, after=after, limit=limit)
        return thread_out(svc, subject_id, thread)

    @router.post(base, response_model=MessageOut, status_code=201)
    def post_message(
        subject_id: subject,
        body: MessageIn,
        response: Response,
        session: DbSession,
        principal: CurrentPrincipal,
    ) -> dict[str, Any]:
        """A text; the same ``client_id`` again answers 200 with the first message."""
        posted = svc.post(session, principal, subject_id, text=body.text, client_id=body.client_id)
        return posted_out(svc, subject_id, posted, response, session)

    @router.post(f"{base}/files", response_model=MessageOut, status_code=201)
    def post_file(
        subject_id: subject,
        response: Response,
        session: DbSession,
        principal: CurrentPrincipal,
        app: App,
        file: Annotated[UploadFile, File(description="A JPEG, PNG or HEIC photo, or a PDF")],
        text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
        client_id: Annotated[str | None, Form(max_length=64)] = None,
    ) -> dict[str, Any]:
        """A photo or PDF, vetted like clinical documents, with an optional caption."""
        posted = svc.post(
            session,
            principal,
            subject_id,
            text=text,
            client_id=client_id,
            attachment=uploaded(file, app),
            blobs=app.blobs,
            limits=app.settings.upload,
        )
        return posted_out(svc, subject_id, posted, response, session)

    @router.get(f"{base}/{{seq}}/attachment")
    def attachment(
        subject_id: subject, seq: Seq, session: DbSession, principal: CurrentPrincipal, app: App
    ) -> StreamingResponse:
        content = svc.attachment(session, principal, subject_id, seq)
        return blob_response(
            app.blobs,
            content.blob_key,
            content.media_type,
            filename=content.filename,
            sha256=content.sha256,
        )

    @router.get(f"{base}/{{seq}}/thumbnail")
    def thumbnail(
        subject_id: subject, seq: Seq, session: DbSession, principal: CurrentPrincipal, app: App
    ) -> StreamingResponse:
        content = svc.attachment(session, principal, subject_id, seq, thumbnail=True)
        return blob_response(app.blobs, content.blob_key, content.media_type)
