"""Steps of the image viewer shared by the browser tests (tests/e2e/test_viewer.py and the
imaging read walk in tests/e2e/test_reads.py): its state is exposed as data attributes of
``#viewer``."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

# Non-black pixels of a canvas (a fraction of all): a drawn CT plane has plenty.
LIT = """(selector) => {
  const c = document.querySelector(selector);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) lit += 1;
  return lit / (c.width * c.height);
}"""


def state(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = page.evaluate("() => ({...document.getElementById('viewer').dataset})")
    return data


def until(page: Page, condition: str) -> None:
    """Wait until ``condition`` holds of the viewer's state (``d``, numbers as numbers)."""
    page.wait_for_function(
        "() => { const d = Object.fromEntries(Object.entries("
        "document.getElementById('viewer').dataset).map(([k, v]) => [k, Number(v)]));"
        f" return {condition}; }}"
    )


def centre(page: Page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(
    page: Page, start: tuple[float, float], dx: float, dy: float, button: Any = "left"
) -> None:
    page.mouse.move(*start)
    page.mouse.down(button=button)
    page.mouse.move(start[0] + dx / 2, start[1] + dy / 2, steps=4)
    page.mouse.move(start[0] + dx, start[1] + dy, steps=4)
    page.mouse.up(button=button)
