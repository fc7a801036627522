"""The video session in chromium: two doctors of one consultation (two browser contexts)
press "join video" on the consultation page, join, and each sees the other's video playing.
Chromium's fake camera and microphone stand in for the devices
(--use-fake-device-for-media-stream, --use-fake-ui-for-media-stream)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.helpers import TIMEOUT_MS, Browsing, LiveServer, sign_in
from tests.e2e.seed import COORDINATOR, Account
from tests.e2e.test_consultation import _jpeg
from tests.live.live_server import VideoServer, video_server
from tests.live.seed_live import DOCTOR, EXPERT
from xietong.identity.roles import Role

MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
# Media negotiation in a loaded CI machine may take longer than a page action.
PLAYING_MS = 60_000

PLAYING = """(video) => new Promise((resolve) => {
  const start = video.currentTime;
  const check = () => {
    if (video.readyState >= 2 && video.videoWidth > 0 && video.currentTime > start) {
      resolve({width: video.videoWidth, ready: video.readyState});
    } else {
      requestAnimationFrame(check);
    }
  };
  check();
})"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoServer]:
    yield from video_server(tmp_path_factory)


@pytest.fixture(scope="module")
def media_browser(browser: Browser) -> Iterator[Browser]:
    """A second chromium with fake devices, launched by the suite's one Playwright (a second
    sync_playwright in the same worker is refused)."""
    launched = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *MEDIA_ARGS], headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def browsing(
    media_browser: Browser, server: VideoServer, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    session = Browsing(media_browser, LiveServer(server.url, server.data_dir, server.log), request)
    try:
        yield session
    finally:
        session.close()


def _participant(
    browsing: Browsing,
    server: VideoServer,
    who: tuple[str, str],
    role: Role = Role.APPLICANT_DOCTOR,
) -> Page:
    page = browsing.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    context: BrowserContext = page.context
    context.grant_permissions(["camera", "microphone"], origin=server.url)
    sign_in(page, Account(who[0], who[1], role))
    page.goto(f"/consultations/{server.consultation_id}")
    with page.expect_navigation():
        page.locator("#form-live button[type=submit]").click()
    expect(page.locator("#live-app")).to_be_visible()
    # The preview plays the fake camera before joining.
    page.locator("#live-preview").evaluate(PLAYING)
    page.locator("#live-join").click()
    expect(page.locator("#live-leave")).to_be_enabled()
    return page


def _talk_beside_the_call(doctor: Page, expert: Page) -> None:
    """The consultation's conversation is on the call page: a note goes over the socket and
    a photo by upload, and neither reloads the page (the call would drop)."""
    doctor.evaluate("window.xtSamePage = true")
    for page in (doctor, expert):
        expect(page.locator("#conversation[data-live=connected]")).to_be_attached()
    doctor.fill('#form-message textarea[name="text"]', "患者血压150/95，请看心电图")
    doctor.locator("#form-message button[type=submit]").click()
    expect(expert.locator(".message .message-text", has_text="血压150/95")).to_be_visible()
    doctor.set_input_files(
        '#form-message input[name="file"]',
        files=[{"name": "心电图.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}],
    )
    doctor.locator("#form-message button[type=submit]").click()
    expect(expert.locator(".message-image img")).to_have_count(1)
    expect(doctor.locator(".message-image img")).to_have_count(1)
    assert doctor.evaluate("window.xtSamePage") is True
    expect(doctor.locator("#live-leave")).to_be_enabled()
    _remote_video_plays(doctor)


def _remote_video_plays(page: Page) -> dict[str, int]:
    remote = page.locator(".live-tile:not(.live-local) video").first
    expect(remote).to_be_attached(timeout=PLAYING_MS)
    return dict(remote.evaluate(PLAYING))


def test_two_doctors_see_each_other(browsing: Browsing, server: VideoServer) -> None:
    doctor = _participant(browsing, server, DOCTOR)
    expert = _participant(browsing, server, EXPERT)
    assert doctor.url == expert.url  # the same open session
    for page in (doctor, expert):
        page.set_default_timeout(PLAYING_MS)
        played = _remote_video_plays(page)
        assert played["width"] > 0
        assert played["ready"] >= 2
        expect(page.locator("#live-people li")).to_have_count(2)
        # One connection: the whole budget, up to what 640×360 needs.
        expect(page.locator("#live-app")).to_have_attribute("data-send-kbps", "1000")
    _talk_beside_the_call(doctor, expert)
    expert.locator("#live-mute").click()
    expect(doctor.locator("#live-people li", has_text="(")).to_have_count(1)
    expert.locator("#live-leave").click()
    expect(doctor.locator(".live-tile:not(.live-local)")).to_have_count(0, timeout=TIMEOUT_MS)


def test_three_people_share_the_uplink(browsing: Browsing, server: VideoServer) -> None:
    """A mesh of three: each sees both others, and sends each half of its upload budget
    (XIETONG_LIVE_UPLOAD_KBPS, 1,500 by default: 750 per connection)."""
    pages = [
        _participant(browsing, server, DOCTOR),
        _participant(browsing, server, EXPERT),
        _participant(
            browsing, server, (COORDINATOR.username, COORDINATOR.display_name), Role.COORDINATOR
        ),
    ]
    for page in pages:
        page.set_default_timeout(PLAYING_MS)
        remote = page.locator(".live-tile:not(.live-local) video")
        expect(remote).to_have_count(2, timeout=PLAYING_MS)
        for index in range(2):
            assert remote.nth(index).evaluate(PLAYING)["width"] > 0
        expect(page.locator("#live-people li")).to_have_count(3)
        expect(page.locator("#live-app")).to_have_attribute("data-send-kbps", "750")
    # One leaves: the two left share between one connection again.
    pages[2].locator("#live-leave").click()
    for page in pages[:2]:
        expect(page.locator(".live-tile:not(.live-local)")).to_have_count(1)
        expect(page.locator("#live-app")).to_have_attribute("data-send-kbps", "1000")


def test_a_dropped_connection_joins_again(browsing: Browsing, server: VideoServer) -> None:
    """The expert's socket drops mid-call (both ends closed, as a network change or a server
    restart does): the page says so, joins again by itself, and the two see each other's
    video again on fresh connections."""
    sockets: list[dict[str, Any]] = []

    def through(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()
        entry: dict[str, Any] = {"page": route, "server": upstream, "live": False}

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str) and '"live.join"' in message:
                entry["live"] = True
            upstream.send(message)

        route.on_message(from_page)
        sockets.append(entry)

    doctor = _participant(browsing, server, DOCTOR)
    expert = browsing.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    expert.route_web_socket(re.compile(r"/ws$"), through)
    expert.context.grant_permissions(["camera", "microphone"], origin=server.url)
    sign_in(expert, Account(EXPERT[0], EXPERT[1], Role.APPLICANT_DOCTOR))
    expert.goto(f"/consultations/{server.consultation_id}")
    with expert.expect_navigation():
        expert.locator("#form-live button[type=submit]").click()
    expert.locator("#live-preview").evaluate(PLAYING)
    expert.locator("#live-join").click()
    for page in (doctor, expert):
        page.set_default_timeout(PLAYING_MS)
        _remote_video_plays(page)
    (live,) = [s for s in sockets if s["live"]]
    remote_of_doctor = doctor.locator(".live-tile:not(.live-local) video").first
    old_peer = remote_of_doctor.get_attribute("data-peer")
    live["server"].close()
    live["page"].close(code=1001)
    expect(expert.locator("#call-status")).to_contain_text("重新加入")
    expect(expert.locator("#live-leave")).to_be_enabled()
    assert len([s for s in sockets if s["live"]]) == 2  # a new socket, and it joined
    for page in (doctor, expert):
        expect(page.locator("#live-people li")).to_have_count(2)
        expect(page.locator(".live-tile:not(.live-local)")).to_have_count(1)
        _remote_video_plays(page)
    # The doctor receives the expert's new peer; the old one is gone.
    assert remote_of_doctor.get_attribute("data-peer") not in (None, old_peer)
