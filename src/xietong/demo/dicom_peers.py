"""The demo network's DICOM node: the CT scanner of 新安县人民医院, calling from this
machine (``storescu -aet DEMO_CT``) and taking C-MOVE results on port 11113."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.demo.accounts import DEMO_COUNTY
from xietong.directory import service as directory
from xietong.directory.models import Institution
from xietong.directory.peer_schemas import DicomPeerCreateIn

DEMO_PEER = DicomPeerCreateIn(
    ae_title="DEMO_CT",
    host="127.0.0.1",
    port=11113,
    description="演示 CT（新安县人民医院放射科）",
)
DEMO_PEER_INSTITUTION = f"HN-X{DEMO_COUNTY}"


def add_demo_peers(session: Session) -> dict[str, int]:
    """Register DEMO_CT for the county hospital (again: nothing new)."""
    institution = session.execute(
        select(Institution).where(Institution.code == DEMO_PEER_INSTITUTION)
    ).scalar_one_or_none()
    if institution is None:
        return {"dicom_peers": 0}
    _, created = directory.register_peer(session, institution, DEMO_PEER)
    return {"dicom_peers": int(created)}
