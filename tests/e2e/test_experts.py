"""The expert library search (专家库), against the page contract of the directory domain.

Contract: GET /experts shows a search form with ``input[name=q]`` (the expert's name) and
``select[name=specialty]`` (specialty codes such as ``cardiology``); results are shown in
the element ``#expert-results``, whether the form reloads the page or htmx swaps them in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from tests.e2e.helpers import sign_in
from tests.e2e.seed import EXPERT_NAME, EXPERT_SPECIALTY, SEARCHER

pytestmark = pytest.mark.browser

NO_SUCH_NAME = "查无此人专家"


def _is_expert_search(response: Response) -> bool:
    return urlsplit(response.url).path.startswith("/experts")


def _search(page: Page, form: Locator) -> None:
    """Submit the form (button, or Enter in the name field) and wait for the answer."""
    button = form.locator('button[type="submit"], input[type="submit"], button:not([type])')
    with page.expect_response(_is_expert_search) as answer:
        if button.count():
            button.first.click()
        else:
            form.locator('input[name="q"]').press("Enter")
    response = answer.value
    assert response.status == 200, f"{response.url} answered {response.status}"
    if response.request.is_navigation_request():
        page.wait_for_url(response.url)  # a plain GET form: the new page has loaded
    expect(page.locator(".htmx-request")).to_have_count(0)  # htmx: the swap is done


def test_expert_search_by_name_and_specialty(page: Page) -> None:
    sign_in(page, SEARCHER)
    response = page.goto("/experts")
    assert response is not None
    assert response.status == 200, f"GET /experts answered {response.status}"

    form = page.locator('form:has(input[name="q"])')
    name = form.locator('input[name="q"]')
    specialty = form.locator('select[name="specialty"]')
    results = page.locator("#expert-results")
    expect(name).to_be_visible()
    expect(specialty).to_be_visible()
    codes: list[str] = specialty.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert EXPERT_SPECIALTY in codes
    other = next((c for c in codes if c and c != EXPERT_SPECIALTY), None)
    assert other is not None, f"the specialty select offers only {codes}"
    any_specialty = "" if "" in codes else None

    # A name nobody has: no expert.
    name.fill(NO_SUCH_NAME)
    if any_specialty is not None:
        specialty.select_option(any_specialty)
    _search(page, form)
    expect(results).to_be_attached()
    expect(results).not_to_contain_text(EXPERT_NAME)

    # By name.
    name.fill(EXPERT_NAME)
    _search(page, form)
    expect(results).to_contain_text(EXPERT_NAME)

    # By name, in another specialty: none.
    specialty.select_option(other)
    _search(page, form)
    expect(results).not_to_contain_text(EXPERT_NAME)

    # By specialty alone.
    name.fill("")
    specialty.select_option(EXPERT_SPECIALTY)
    _search(page, form)
    expect(results).to_contain_text(EXPERT_NAME)

    # Another specialty alone: not this expert.
    specialty.select_option(other)
    _search(page, form)
    expect(results).not_to_contain_text(EXPERT_NAME)
