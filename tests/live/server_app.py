"""The app for the live-server tests (``uvicorn tests.live.server_app:create_app
--factory``): the real app, with the stand-in consultation participation registered while
the consultation's own registration has not landed (tests/live/subject.py)."""

from __future__ import annotations

from fastapi import FastAPI

from tests.live.subject import ensure_registered
from xietong.main import create_app as create_real_app


def create_app() -> FastAPI:
    ensure_registered()
    return create_real_app()
