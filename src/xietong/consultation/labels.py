"""Names of the consultation's urgencies and modes, marked for translation: the pages and
the printed report show the same words."""

from __future__ import annotations

from xietong.core.errors import N_

URGENCY_LABELS = {"routine": N_("Routine"), "urgent": N_("Urgent"), "emergency": N_("Emergency")}
MODE_LABELS = {"async": N_("Asynchronous"), "live": N_("Live session")}
READ_STATUS_LABELS = {
    "preliminary": N_("Preliminary"),
    "final": N_("Final"),
    "amended": N_("Amended (final)"),
}
