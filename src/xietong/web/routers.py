"""Every router of the app, in one list; a new capability adds its routers here."""

from __future__ import annotations

from fastapi import FastAPI

from xietong.web.pages import account as account_pages
from xietong.web.pages import admin_audit as admin_audit_pages
from xietong.web.pages import admin_users as admin_users_pages
from xietong.web.pages import auth as auth_pages
from xietong.web.pages import chart as chart_pages
from xietong.web.pages import consultation_forms, directory_forms, patient_forms
from xietong.web.pages import consultation_messages as consultation_message_pages
from xietong.web.pages import consultations as consultation_pages
from xietong.web.pages import dicom_peers as dicom_peer_pages
from xietong.web.pages import directory as directory_pages
from xietong.web.pages import documents as document_pages
from xietong.web.pages import home as home_pages
from xietong.web.pages import imaging_upload as imaging_upload_pages
from xietong.web.pages import imaging_viewer as imaging_viewer_pages
from xietong.web.pages import live as live_pages
from xietong.web.pages import messages as message_pages
from xietong.web.pages import notifications as notification_pages
from xietong.web.pages import patients as patient_pages
from xietong.web.pages import reads as read_pages
from xietong.web.pages import record_entry as record_entry_pages
from xietong.web.pages import record_forms as record_form_pages
from xietong.web.pages import referral_forms as referral_form_pages
from xietong.web.pages import referral_messages as referral_message_pages
from xietong.web.pages import referrals as referral_pages
from xietong.web.pages import slots as slot_pages
from xietong.web.realtime import chat as realtime_chat  # noqa: F401  (registers its frames)
from xietong.web.realtime import endpoint as realtime_endpoint
from xietong.web.realtime import live as realtime_live  # noqa: F401  (registers live.* frames)
from xietong.web.routes import audit as audit_routes
from xietong.web.routes import auth as auth_routes
from xietong.web.routes import consultation_messages as consultation_message_routes
from xietong.web.routes import consultations as consultation_routes
from xietong.web.routes import conversations as conversation_routes
from xietong.web.routes import dicom_peers as dicom_peer_routes
from xietong.web.routes import dicomweb as dicomweb_routes
from xietong.web.routes import dicomweb_rendered, dicomweb_stow, health
from xietong.web.routes import directory as directory_routes
from xietong.web.routes import documents as document_routes
from xietong.web.routes import imaging_uploads as imaging_upload_routes
from xietong.web.routes import live as live_routes
from xietong.web.routes import notifications as notification_routes
from xietong.web.routes import patients as patients_routes
from xietong.web.routes import reads as read_routes
from xietong.web.routes import records as records_routes
from xietong.web.routes import referral_messages as referral_message_routes
from xietong.web.routes import referrals as referral_routes
from xietong.web.routes import slots as slot_routes
from xietong.web.routes import users as users_routes

# Paths that take file uploads get XIETONG_HTTP_MAX_UPLOAD_BYTES instead of the body limit.
UPLOAD_PATHS: tuple[str, ...] = (
    *document_routes.UPLOAD_PATHS,
    *consultation_message_routes.UPLOAD_PATHS,
    *consultation_message_pages.UPLOAD_PATHS,
    *referral_message_routes.UPLOAD_PATHS,
    *referral_message_pages.UPLOAD_PATHS,
    *conversation_routes.UPLOAD_PATHS,
    *message_pages.UPLOAD_PATHS,
    *dicomweb_stow.UPLOAD_PATHS,
    *imaging_upload_routes.UPLOAD_PATHS,
)


def include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(realtime_endpoint.router)
    app.include_router(auth_routes.router)
    app.include_router(users_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(directory_routes.router)
    app.include_router(dicom_peer_routes.router)
    app.include_router(patients_routes.router)
    app.include_router(records_routes.router)
    app.include_router(document_routes.router)
    app.include_router(notification_routes.router)
    app.include_router(consultation_routes.router)
    app.include_router(read_routes.router)
    app.include_router(consultation_message_routes.router)
    app.include_router(referral_message_routes.router)
    app.include_router(referral_routes.router)
    app.include_router(live_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(conversation_routes.colleague_router)
    app.include_router(slot_routes.router)
    app.include_router(dicomweb_stow.router)
    app.include_router(dicomweb_routes.router)
    app.include_router(dicomweb_rendered.router)
    app.include_router(imaging_upload_routes.router)
    app.include_router(auth_pages.router)
    app.include_router(home_pages.router)
    app.include_router(account_pages.router)
    app.include_router(admin_users_pages.router)
    app.include_router(admin_audit_pages.router)
    # The forms first: /institutions/new must not be taken for an institution id.
    app.include_router(directory_forms.router)
    app.include_router(dicom_peer_pages.router)
    app.include_router(directory_pages.router)
    # The record forms and entry pages before any other /records/{kind}/{id}-like page
    # (/records/icd10-options is a fragment, not an entry). /patients/{id}/records/new
    # has four segments: no other patient page takes it.
    app.include_router(record_form_pages.router)
    app.include_router(record_entry_pages.router)
    # The forms first: /patients/new must not be taken for a patient id.
    app.include_router(patient_forms.router)
    app.include_router(patient_pages.router)
    app.include_router(document_pages.router)
    app.include_router(chart_pages.router)
    app.include_router(notification_pages.router)
    # Before /consultations/{id}/{action}: "messages" is not one of its actions.
    app.include_router(consultation_message_pages.router)
    app.include_router(consultation_pages.router)
    app.include_router(read_pages.router)
    app.include_router(consultation_forms.router)
    app.include_router(slot_pages.router)
    app.include_router(imaging_upload_pages.router)
    # The forms first: /referrals/{id}/down/new is not an action of /referrals/{id}/{action}.
    app.include_router(referral_form_pages.router)
    # Before /referrals/{id}/{action}: "messages" is not one of its actions.
    app.include_router(referral_message_pages.router)
    app.include_router(referral_pages.router)
    app.include_router(message_pages.router)
    app.include_router(imaging_viewer_pages.router)
    app.include_router(live_pages.router)
