"""The weekly report archive: each ISO week's report in its own folder under one root, and an index page of the weeks.

    <root>/index.html     the weeks, newest first, each with the figures of its report's KPI block and a link to it
    <root>/2024-W11/      that week's report (reports.weekly), its KPI figures in kpis.json
    <root>/.index.lock    held while the index page is rewritten

Rendering a week replaces that week's folder only (swapped in whole, as every report is). When the week has
no folder yet, app pages unchanged since the latest earlier week are hard-linked from that week's folder
instead of rendered again, so one page file may belong to several weeks: never edit a page in place.
The index page reads each week's kpis.json, never an old report's HTML; a week whose kpis.json is missing
or damaged is listed as "KPIs unavailable" (and the reason logged). Anything else in the root is left
alone and not listed. Nothing here deletes a week.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

from finmon import settings
from finmon.model import utcnow
from reports.weekly import KPIS, ReportError, build_context, environment, translations, week_window, write_report

log = logging.getLogger(__name__)

WEEK_FOLDER = re.compile(r"\d{4}-W\d{2}")  # as build_context names a week: "2024-W11"
INDEX = "index.html"
INDEX_MARK = 'id="weekly-archive"'  # in every index page written here: any other index.html is never overwritten
LOCK = ".index.lock"
KPIS_MAX_BYTES = 64 * 1024  # a larger kpis.json is damaged, not read
KPI_FIGURES = ("apps", "high_apps", "unresolved", "new", "resolved", "no_policy")


@dataclass(frozen=True)
class ArchivedWeek:
    """One week's folder in an archive, as its index page lists it."""

    name: str  # "2024-W11"
    year: int
    number: int
    start: str  # its Monday and Sunday, ISO dates
    end: str
    has_report: bool  # the folder holds the report's index.html
    kpi: dict[str, Any] | None  # the report's KPI figures; None when kpis.json is missing or damaged


def render_archive(store: Any, root: str | Path, lang: str = "zh", week: str | date | None = None,
                   workers: int | None = None) -> Path:
    """Render the report of ``week`` (default: as for render_report) into ``<root>/<ISO week>/`` and
    rewrite ``<root>/index.html``; returns the week's index.html. ``lang`` and ``workers`` as for
    :func:`reports.weekly.render_report`."""
    root = Path(root).absolute()
    _check_root(root)
    ctx = build_context(store, lang, week, translations(lang).gettext)
    ctx["archive_index"] = f"../{INDEX}"
    folder = root / ctx["week"]["name"]
    reuse_from = None if folder.is_dir() else _latest_week_before(root, folder.name)
    report = write_report(store, lang, ctx, folder, workers, reuse_from)
    render_archive_index(root, lang)
    return report


def render_archive_index(root: str | Path, lang: str = "zh") -> Path:
    """Rewrite ``<root>/index.html`` from the week folders there (written whole: a reader sees the old page or the
    new one); returns its path."""
    root = Path(root).absolute()
    _check_root(root)
    env = environment(lang)
    with _locked(root):  # listing and writing under one lock: the last page written lists every week swapped in
        html = env.get_template("archive.html").render(weeks=archived_weeks(root), generated=utcnow(),
                                                       weights=settings.FINMON_RISK_WEIGHTS)
        _write_whole(root / INDEX, html)
    return root / INDEX


def archived_weeks(root: str | Path) -> list[ArchivedWeek]:
    """The week folders in ``root``, newest first (folders named like a real ISO week; symbolic links are not)."""
    root = Path(root)
    weeks = []
    for folder in root.iterdir() if root.is_dir() else ():
        if not WEEK_FOLDER.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            start, end = week_window(folder.name)
        except ValueError:  # 2024-W60
            continue
        iso, has_report = start.isocalendar(), (folder / INDEX).is_file()
        if not has_report:
            log.warning("%s: the week's report is missing (no %s)", folder, INDEX)
        weeks.append(ArchivedWeek(
            name=folder.name, year=iso.year, number=iso.week, start=start.date().isoformat(),
            end=(end - timedelta(days=1)).date().isoformat(), has_report=has_report,
            kpi=read_kpis(folder) if has_report else None))
    return sorted(weeks, key=lambda w: w.name, reverse=True)


def read_kpis(folder: Path) -> dict[str, Any] | None:
    """The KPI figures a week's report saved in its kpis.json; None (and a warning why) when missing or damaged."""
    path = folder / KPIS
    try:
        if path.stat().st_size > KPIS_MAX_BYTES:
            raise ValueError(f"larger than {KPIS_MAX_BYTES} bytes")
        saved = json.loads(path.read_text(encoding="utf-8"))
        kpi = _checked_kpis(saved, folder.name)
    except FileNotFoundError:
        log.warning("%s: KPIs unavailable: no %s", folder, KPIS)
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s: KPIs unavailable: %s", path, exc)
        return None
    return kpi


def _checked_kpis(saved: Any, week: str) -> dict[str, Any]:
    """``saved["kpi"]`` when it is what write_report saves for ``week``; ValueError naming what is wrong."""
    if not isinstance(saved, dict) or not isinstance(saved.get("kpi"), dict):
        raise ValueError("not a KPI record")
    saved_week = saved.get("week")
    if not isinstance(saved_week, dict) or saved_week.get("name") != week:
        raise ValueError(f"the record is not of week {week}")
    kpi = saved["kpi"]
    severity = kpi.get("severity")
    figures = [(name, kpi.get(name)) for name in KPI_FIGURES]
    figures.append(("severity.high", severity.get("high") if isinstance(severity, dict) else None))
    for name, value in figures:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} is not a count: {value!r}")
    return kpi


def _latest_week_before(root: Path, name: str) -> Path | None:
    """The folder of the latest week before ``name`` that holds a report, whose unchanged app pages a new week
    links instead of rendering them again."""
    return next((root / w.name for w in archived_weeks(root) if w.name < name and w.has_report), None)


def _check_root(root: Path) -> None:
    """Refuse a root whose index.html is not an archive's (a report, someone's page): it would be overwritten."""
    index = root / INDEX
    try:
        with open(index, encoding="utf-8", errors="replace") as fh:
            head = fh.read(200_000)
    except FileNotFoundError:
        return
    if INDEX_MARK not in head:
        raise ReportError(f"{index} is not a weekly report archive's index: give an archive, or an empty or new folder")


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel drops it if this process dies
        yield
    finally:
        os.close(fd)


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file renamed over it; temporary files a killed writer left are removed
    (the caller holds the lock, so no other writer has one open)."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's file is private; the page is as any report page
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
