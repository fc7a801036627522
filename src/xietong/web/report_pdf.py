"""The consultation report and the imaging read report as printable PDFs (A4), with the
institutions' letterhead.

:func:`xietong.consultation.service.printable_report` decides who may print which signed
version and gathers what goes on the paper (and audits it); this module only lays it out:
the Jinja2 template ``consultations/report_print.html`` rendered in the user's locale, then
weasyprint. The rendering lives in the web layer, not in ``consultation/``, because the
domain packages import neither Jinja2 nor ``xietong.web`` (import-linter: "Kernel and
domain services know nothing of HTTP"), and a second template environment inside the
domain would duplicate the web one (autoescape, translations, Babel extraction of
``templates/``). :func:`render_report_pdf` knows no HTTP (the CLI or a job may call it);
:func:`pdf_response` wraps it for the page and the API route.

Safety. Every value is user text and goes through the environment's autoescape (the
template never marks a value safe); the only unescaped strings are CSS strings built
here from our own catalogs, escaped for CSS. weasyprint never fetches: the HTML has no
base URL, and :class:`xietong.web.html_pdf.NoFetching` refuses every URL except ``data:``
URIs, so even a markup injection could not download anything at run time. Fonts are the
system's, by family name through fontconfig: "Noto Serif CJK SC" and "Noto Sans CJK SC"
(Debian's ``fonts-noto-cjk``); weasyprint embeds the glyphs used.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from markupsafe import Markup

from xietong.consultation.labels import MODE_LABELS, READ_STATUS_LABELS, URGENCY_LABELS
from xietong.consultation.read_templates import BY_KEY
from xietong.consultation.service import PrintableReport
from xietong.consultation.service.read_reports import PrintableRead
from xietong.core.clock import now
from xietong.core.errors import N_
from xietong.core.i18n import translations
from xietong.core.validation import as_utc
from xietong.directory.specialties import specialty_label
from xietong.directory.titles import title_label
from xietong.patients.identifiers import SEX_LABELS
from xietong.records.rules import CHINA_TZ
from xietong.web.deps import request_locale
from xietong.web.html_pdf import NoFetching, html_to_pdf
from xietong.web.templating import environment

TEMPLATE = "consultations/report_print.html"
PAGE_FOOTER = N_("Page {page} of {pages}")


def china_time(moment: datetime | None) -> str:
    return as_utc(moment).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def css_string(text: str) -> str:
    """``text`` as a double-quoted CSS string that is also safe inside ``<style>``."""

    def escape(match: re.Match[str]) -> str:
        return f"\\{ord(match.group(0)):X} "

    return '"' + re.sub(r'[\\"<>&\n\r\f]', escape, text) + '"'


def counter_content(template: str) -> str:
    """A translated "Page {page} of {pages}" as a CSS ``content`` value with counters."""
    parts = []
    for piece in re.split(r"(\{page\}|\{pages\})", template):
        if piece == "{page}":
            parts.append("counter(page)")
        elif piece == "{pages}":
            parts.append("counter(pages)")
        elif piece:
            parts.append(css_string(piece))
    return " ".join(parts)


def print_context(locale: str, running: str, **running_params: Any) -> dict[str, Any]:
    """What every printable template gets: translations, times, the page footer and the
    running header (``running``, a msgid formatted with ``running_params``) as CSS strings."""
    trans = translations(locale)

    def gettext(message: str, **params: Any) -> str:
        text = trans.gettext(message)
        return text.format(**params) if params else text

    return {
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh_CN" else "en",
        "_": gettext,
        "gettext": gettext,
        "china_time": china_time,
        "printed_at": china_time(now()),
        "title_label": lambda code: title_label(code, locale) if code else "",
        # CSS strings, escaped here: the template inserts them into <style> as they are.
        "css_footer": Markup(counter_content(gettext(PAGE_FOOTER))),  # noqa: S704
        "css_running": Markup(css_string(gettext(running, **running_params))),  # noqa: S704
    }


def render_report_html(report: PrintableReport, locale: str) -> str:
    context = print_context(
        locale,
        N_("Consultation {number} · version {version}"),
        number=report.consultation_id,
        version=report.version,
    )
    gettext = context["gettext"]
    context |= {
        "r": report,
        "sex_label": gettext(SEX_LABELS.get(report.patient_sex, SEX_LABELS["0"])),
        "urgency_label": gettext(URGENCY_LABELS.get(report.urgency, report.urgency)),
        "mode_label": gettext(MODE_LABELS.get(report.mode, report.mode)),
        "specialty_label": specialty_label(report.specialty, locale),
    }
    return environment().get_template(TEMPLATE).render(context)


def render_report_pdf(
    report: PrintableReport, locale: str, *, fetcher: NoFetching | None = None
) -> bytes:
    """The report as PDF bytes, in ``locale`` (zh_CN or en)."""
    return html_to_pdf(render_report_html(report, locale), fetcher=fetcher)


def pdf_filename(report: PrintableReport) -> str:
    return f"consultation-{report.consultation_id}-v{report.version}.pdf"


def pdf_response(request: Request, report: PrintableReport) -> Response:
    """The PDF in the request's locale, shown in the browser (``inline``), never cached."""
    locale = response_locale(request)
    return inline_pdf(render_report_pdf(report, locale), pdf_filename(report))


def response_locale(request: Request) -> str:
    locale: str = getattr(request.state, "locale", None) or request_locale(request)
    return locale


def inline_pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


READ_TEMPLATE = "consultations/read_print.html"


def render_read_html(report: PrintableRead, locale: str) -> str:
    context = print_context(
        locale,
        N_("Imaging read {number} · version {version}"),
        number=report.read_id,
        version=report.version,
    )
    gettext = context["gettext"]
    template = BY_KEY.get(report.template_key)
    context |= {
        "r": report,
        "sex_label": gettext(SEX_LABELS.get(report.patient_sex, SEX_LABELS["0"])),
        "urgency_label": gettext(URGENCY_LABELS.get(report.urgency, report.urgency)),
        "status_label": gettext(READ_STATUS_LABELS.get(report.status, report.status)),
        "template_label": gettext(template.label) if template else report.template_key,
    }
    return environment().get_template(READ_TEMPLATE).render(context)


def read_pdf_response(request: Request, report: PrintableRead) -> Response:
    """The read report as an inline PDF in the request's locale."""
    data = html_to_pdf(render_read_html(report, response_locale(request)))
    return inline_pdf(data, f"read-{report.read_id}-v{report.version}.pdf")
