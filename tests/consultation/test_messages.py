"""The consultation's messages over the API: the applicant and the experts write to each
other in order, with photos and PDFs; status events appear in the conversation; resends
are idempotent; who may read and post; every read that reveals messages audited; the
"new message" notification; bad input named by field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, audits, create, reach
from tests.records.test_documents import pdf_bytes, phone_photo
from xietong.messaging.models import Message
from xietong.notifications.models import Notification

API = "/api/v1/consultations"
UNRELATED = ("other_doctor", "other_coordinator", "other_expert", "county_doctor")


def _post(client: TestClient, n: Net, cid: int, who: str, text: str, **extra: Any) -> Any:
    return client.post(f"{API}/{cid}/messages", json={"text": text, **extra}, headers=n.tokens[who])


def _read(client: TestClient, n: Net, cid: int, who: str, after: int = 0) -> Any:
    r = client.get(f"{API}/{cid}/messages", params={"after": after}, headers=n.tokens[who])
    assert r.status_code == 200, r.text
    return r.json()


def _messages(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_applicant_and_experts_write_to_each_other_in_order(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    r = _post(client, net, c.id, "applicant", "心电图已上传，请看")
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["kind"], first["text"], first["sender_name"]) == (
        "text",
        "心电图已上传，请看",
        "c_applicant",
    )
    assert _post(client, net, c.id, "expert_a", "收到，是否有肌钙蛋白？").status_code == 201
    assert _post(client, net, c.id, "coordinator", "已通知检验科").status_code == 201
    thread = _read(client, net, c.id, "expert_b")
    # Status events first (submit, accept, start), then the three messages, in order.
    events = [m["event"] for m in thread["items"] if m["kind"] == "system"]
    assert events == ["consultation.submit", "consultation.accept", "consultation.start"]
    texts = [m["text"] for m in thread["items"] if m["kind"] == "text"]
    assert texts == ["心电图已上传，请看", "收到，是否有肌钙蛋白？", "已通知检验科"]
    seqs = [m["seq"] for m in thread["items"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert thread["last_seq"] == seqs[-1]
    assert thread["can_post"] is True
    accepted = next(m for m in thread["items"] if m["event"] == "consultation.accept")
    assert accepted["sender_name"] == "c_coord"
    assert accepted["event_data"] == {"from": "submitted", "to": "accepted", "note": None}
    # Polling on from the last one finds nothing new; a later message comes next.
    assert _read(client, net, c.id, "expert_b", after=thread["last_seq"])["items"] == []
    _post(client, net, c.id, "applicant", "肌钙蛋白阴性")
    later = _read(client, net, c.id, "expert_b", after=thread["last_seq"])["items"]
    assert [m["text"] for m in later] == ["肌钙蛋白阴性"]


def test_read_receipts(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    seq = _post(client, net, c.id, "applicant", "请看").json()["seq"]
    positions = {
        p["name"]: p["last_read_seq"]
        for p in _read(client, net, c.id, "applicant")["read_positions"]
    }
    assert positions == {"c_applicant": seq}  # the sender has read what they wrote
    _read(client, net, c.id, "expert_a")
    positions = {
        p["name"]: p["last_read_seq"]
        for p in _read(client, net, c.id, "applicant")["read_positions"]
    }
    assert positions == {"c_applicant": seq, "c_expert_a": seq}


def test_photos_and_pdfs(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    h = net.tokens["applicant"]
    r = client.post(
        f"{API}/{c.id}/messages/files",
        data={"text": "心电图", "client_id": "ecg-1"},
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["kind"] == "image"
    assert photo["text"] == "心电图"
    att = photo["attachment"]
    assert (att["width"], att["height"], att["media_type"]) == (300, 400, "image/jpeg")
    got = client.get(att["url"], headers=net.tokens["expert_a"])
    assert got.status_code == 200
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["cache-control"] == "private, no-store"
    assert "filename*=UTF-8''%E5%BF%83%E7%94%B5%E5%9B%BE.jpg" in got.headers["content-disposition"]
    assert client.get(att["thumbnail_url"], headers=net.tokens["expert_a"]).status_code == 200
    # The same form sent again (a retry) is the same message.
    again = client.post(
        f"{API}/{c.id}/messages/files",
        data={"text": "心电图", "client_id": "ecg-1"},
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert again.status_code == 200
    assert again.json()["seq"] == photo["seq"]
    r = client.post(
        f"{API}/{c.id}/messages/files",
        files={"file": ("出院小结.pdf", pdf_bytes(2), "application/pdf")},
        headers=net.tokens["expert_a"],
    )
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["attachment"]["pdf_pages"]) == ("file", 2)
    pdf = client.get(r.json()["attachment"]["url"], headers=h)
    assert pdf.headers["content-type"] == "application/pdf"
    assert "sandbox" in pdf.headers["content-security-policy"]
    # A text message has no attachment to fetch.
    seq = _post(client, net, c.id, "applicant", "文字").json()["seq"]
    r = client.get(f"{API}/{c.id}/messages/{seq}/attachment", headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (404, "seq")
    reads = audits(db, "consultation.message.attachment", object_id=str(c.id))
    assert len(reads) == 3


def test_a_resend_with_the_same_client_id_makes_one_message(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    first = _post(client, net, c.id, "applicant", "请尽快", client_id="req-42")
    again = _post(client, net, c.id, "applicant", "请尽快", client_id="req-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["seq"] == again.json()["seq"]
    other = _post(client, net, c.id, "applicant", "改了", client_id="req-42")
    assert other.status_code == 409
    assert other.json()["error"] == {
        **other.json()["error"],
        "code": "client_id_reused",
        "field": "client_id",
    }
    assert audits(db, "consultation.message.retry", object_id=str(c.id))


@pytest.mark.parametrize("who", UNRELATED)
def test_unrelated_users_get_404_on_the_messages(
    client: TestClient, db: Session, net: Net, who: str
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    seq = client.post(
        f"{API}/{c.id}/messages/files",
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=net.tokens["applicant"],
    ).json()["seq"]
    before = _messages(db)
    h = net.tokens[who]
    for path in ("/messages", f"/messages/{seq}/attachment", f"/messages/{seq}/thumbnail"):
        r = client.get(f"{API}/{c.id}{path}", headers=h)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "consultation_not_found"
    assert _post(client, net, c.id, who, "hello").status_code == 404
    r = client.post(
        f"{API}/{c.id}/messages/files",
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert r.status_code == 404
    assert _messages(db) == before
    for action in (
        "consultation.messages",
        "consultation.message",
        "consultation.message.attachment",
    ):
        assert audits(db, action, outcome="denied", object_id=str(c.id)), action


def test_who_may_post_and_when(client: TestClient, db: Session, net: Net) -> None:
    draft = create(db, net)
    waiting = reach(db, net, "submitted")
    done = reach(db, net, "completed")
    db.commit()
    # The clinic's other staff read the conversation but take no part in it.
    assert _read(client, net, waiting.id, "viewer")["can_post"] is False
    r = _post(client, net, waiting.id, "viewer", "我也想说")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "role_not_allowed")
    # Before experts are assigned, the applicant and the coordinators talk.
    assert _post(client, net, waiting.id, "applicant", "补充：有高血压史").status_code == 201
    assert _post(client, net, waiting.id, "coordinator", "好的").status_code == 201
    # An expert not (yet) assigned does not see it at all.
    assert _post(client, net, waiting.id, "expert_a", "?").status_code == 404
    # A draft is not yet a conversation; a closed consultation's stays readable.
    for c in (draft, done):
        r = _post(client, net, c.id, "applicant", "还在吗")
        assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["field"]) == (
            409,
            "conversation_closed",
            "state",
        )
    assert _read(client, net, draft.id, "applicant")["items"] == []
    closed = _read(client, net, done.id, "applicant")
    assert closed["can_post"] is False
    assert closed["items"][-1]["event"] == "consultation.complete"


def test_reads_that_reveal_messages_are_audited_and_empty_polls_are_not(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    _post(client, net, c.id, "applicant", "一")
    _post(client, net, c.id, "applicant", "二")
    last = _read(client, net, c.id, "expert_a")["last_seq"]
    rows = audits(
        db, "consultation.messages", object_id=str(c.id), actor_user_id=net.p["expert_a"].user_id
    )
    assert len(rows) == 1
    assert json.loads(rows[0].detail) == {"from_seq": 1, "to_seq": last, "count": last}
    for _ in range(3):
        _read(client, net, c.id, "expert_a", after=last)
    assert (
        len(
            audits(
                db,
                "consultation.messages",
                object_id=str(c.id),
                actor_user_id=net.p["expert_a"].user_id,
            )
        )
        == 1
    )


def test_one_new_message_notification_until_it_is_read(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    expert = net.p["expert_a"].user_id

    def unread() -> list[Notification]:
        db.expire_all()
        return list(
            db.execute(
                select(Notification).where(
                    Notification.recipient_user_id == expert,
                    Notification.kind == "consultation.message",
                    Notification.read_at.is_(None),
                )
            ).scalars()
        )

    _post(client, net, c.id, "applicant", "一")
    _post(client, net, c.id, "applicant", "二")
    assert len(unread()) == 1
    assert unread()[0].link == f"/consultations/{c.id}#conversation"
    _read(client, net, c.id, "expert_a")
    assert unread() == []  # reading the conversation answers it
    _post(client, net, c.id, "applicant", "三")
    assert len(unread()) == 1
    # Nobody is notified of their own message; the applicant is told of the expert's
    # answer, and the lead, who has not read "三" yet, still has that one notification.
    _post(client, net, c.id, "expert_b", "答复")
    assert len(unread()) == 1
    db.expire_all()
    told = set(
        db.execute(
            select(Notification.recipient_user_id).where(
                Notification.kind == "consultation.message",
                Notification.actor_user_id == net.p["expert_b"].user_id,
            )
        ).scalars()
    )
    assert told == {net.p["applicant"].user_id}


# Bad input ----------------------------------------------------------------------------------

TEXT_CASES: list[tuple[str, Any, str, int]] = [
    ("empty", {"text": ""}, "text", 422),
    ("blank", {"text": "   "}, "text", 422),
    ("missing", {}, "text", 422),
    ("too long", {"text": "长" * 4001}, "text", 422),
    ("NUL", {"text": "a\x00b"}, "text", 422),
    ("number", {"text": 5}, "text", 422),
    ("extra", {"text": "ok", "to": "all"}, "to", 422),
    ("client id", {"text": "ok", "client_id": "a b"}, "client_id", 422),
    ("client id long", {"text": "ok", "client_id": "x" * 65}, "client_id", 422),
]


@pytest.mark.parametrize(
    ("case", "body", "field", "status"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES]
)
def test_bad_text_messages(
    client: TestClient, db: Session, net: Net, case: str, body: Any, field: str, status: int
) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    before = _messages(db)
    r = client.post(f"{API}/{c.id}/messages", json=body, headers=net.tokens["applicant"])
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert _messages(db) == before


def test_bad_requests_and_files(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    before = _messages(db)
    h = net.tokens["applicant"]
    r = client.post(
        f"{API}/{c.id}/messages",
        content=b"{not json",
        headers={**h, "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")
    r = client.get(f"{API}/{c.id}/messages", params={"after": -1}, headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "after")
    r = client.get(f"{API}/{c.id}/messages", params={"limit": 10_000}, headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "limit")
    r = client.get(f"{API}/{2**31}/messages", headers=h)
    assert r.status_code == 422
    r = client.get(f"{API}/{c.id}/messages/{2**31}/attachment", headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "seq")
    files = [
        (("run.exe", b"MZ" + b"\x00" * 500, "image/png"), 415),
        (("empty.png", b"", "image/png"), 422),
        (("fake.pdf", b"%PDF-1.4 nothing else", "application/pdf"), 422),
    ]
    for upload, status in files:
        r = client.post(f"{API}/{c.id}/messages/files", files={"file": upload}, headers=h)
        assert r.status_code == status, (upload[0], r.text)
        assert r.json()["error"]["field"] == "file"
    r = client.post(f"{API}/{c.id}/messages/files", data={"text": "no file"}, headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "file")
    r = client.post(
        f"{API}/{c.id}/messages/files",
        data={"text": "a\x00b"},
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert (r.status_code, r.json()["error"]["field"]) == (422, "text")
    assert _messages(db) == before
    # Oversized: one file past the per-file limit names the file; a body past the upload
    # limit, or a JSON body past the body limit, is refused before it is read.
    big = b"\xff\xd8\xff" + b"0" * (33 * 1024 * 1024)
    r = client.post(
        f"{API}/{c.id}/messages/files", files={"file": ("big.jpg", big, "image/jpeg")}, headers=h
    )
    assert (r.status_code, r.json()["error"]["field"]) == (413, "file")
    r = client.post(f"{API}/{c.id}/messages", json={"text": "长" * 2_000_000}, headers=h)
    assert r.status_code == 413
    assert _messages(db) == before
