"""Every table of every domain, imported in one place for Alembic and the test database."""

from xietong.access.models import AuditChainHead, AuditEvent
from xietong.consultation.models import (
    Consultation,
    ConsultationAssignment,
    ConsultationGrant,
    ConsultationHistory,
    ConsultationOpinion,
    ConsultationReadReport,
    ConsultationReport,
)
from xietong.core.db import Base
from xietong.core.workflow_events import WorkflowEvent
from xietong.directory.models import (
    Department,
    ExpertAvailability,
    ExpertProfile,
    Institution,
    Practitioner,
    PractitionerSpecialty,
    Region,
    ServiceLink,
)
from xietong.directory.peer_models import DicomPeer
from xietong.identity.models import AuthSession, User, UserRole
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.upload_models import ImagingUpload, ImagingUploadItem
from xietong.live.models import LiveAdmission, LiveAttendance, LiveLink, LiveSession
from xietong.messaging.models import Conversation, ConversationMember, ConversationRead, Message
from xietong.notifications.models import Notification
from xietong.patients.models import (
    ChartGrant,
    ChartGrantItem,
    Patient,
    PatientIdentifier,
    PatientInstitution,
    PatientMerge,
)
from xietong.records.document_models import ClinicalDocument, DocumentPage
from xietong.records.models import (
    Allergy,
    Diagnosis,
    Encounter,
    LabResult,
    Medication,
    RecordRevision,
    VitalSign,
)
from xietong.referral.models import FollowUp, Referral, ReferralGrant, ReferralHistory
from xietong.referral.slot_models import Slot, SlotBooking, SlotTemplate

__all__ = [
    "Allergy",
    "AuditChainHead",
    "AuditEvent",
    "AuthSession",
    "Base",
    "ChartGrant",
    "ChartGrantItem",
    "ClinicalDocument",
    "Consultation",
    "ConsultationAssignment",
    "ConsultationGrant",
    "ConsultationHistory",
    "ConsultationOpinion",
    "ConsultationReadReport",
    "ConsultationReport",
    "Conversation",
    "ConversationMember",
    "ConversationRead",
    "Department",
    "Diagnosis",
    "DicomPeer",
    "DocumentPage",
    "Encounter",
    "ExpertAvailability",
    "ExpertProfile",
    "FollowUp",
    "ImagingInstance",
    "ImagingSeries",
    "ImagingStudy",
    "ImagingUpload",
    "ImagingUploadItem",
    "Institution",
    "LabResult",
    "LiveAdmission",
    "LiveAttendance",
    "LiveLink",
    "LiveSession",
    "Medication",
    "Message",
    "Notification",
    "Patient",
    "PatientIdentifier",
    "PatientInstitution",
    "PatientMerge",
    "Practitioner",
    "PractitionerSpecialty",
    "RecordRevision",
    "Referral",
    "ReferralGrant",
    "ReferralHistory",
    "Region",
    "ServiceLink",
    "Slot",
    "SlotBooking",
    "SlotTemplate",
    "User",
    "UserRole",
    "VitalSign",
    "WorkflowEvent",
]
