"""Privacy policy text extraction: a fetched body (HTML in any charset, or PDF) → PolicyVersion.

HTML goes through trafilatura (main text without navigation boilerplate), with a plain
text fallback when trafilatura finds nothing; PDF goes through pypdf. The text is
normalised with :func:`finmon.model.normalise_text` and its sha256 is the version id.
:class:`PolicyExtractor` extracts each distinct body once per run.
"""
from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import re
from datetime import date
from pathlib import Path

import lxml.html
import pypdf
import trafilatura
from charset_normalizer import from_bytes
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom, resolve_encoding

from crawler.workers import Workers
from finmon.model import PolicyVersion, detect_language, normalise_text, sha256_hex

log = logging.getLogger(__name__)

CHARSET_GUESSED = "charset_guessed"
_DATES = json.loads((Path(__file__).parent / "data" / "policy_dates.json").read_text(encoding="utf-8"))
_MONTHS = {name.lower(): number for name, number in _DATES["months"].items()}


class ExtractionFailed(Exception):
    """The body yielded no policy text (broken PDF, empty page, …)."""

    kind = "extraction_failed"


# --- charset ------------------------------------------------------------------

# The Encoding Standard decodes every GBK label with the gb18030 decoder (a superset:
# real "gbk" pages carry four-byte gb18030 characters); w3lib before 2.6 did the same.
_GB18030_LABELS = frozenset({"gbk", "gb2312", "gb18030"})


def _codec(label: str | None) -> str | None:
    """A charset label → the Python codec that decodes it as a browser would, or None."""
    encoding = resolve_encoding(label) if label else None
    return "gb18030" if encoding in _GB18030_LABELS else encoding


def decode_body(body: bytes, content_type: str | None) -> tuple[str, str, bool]:
    """Decode an HTML body → (text, encoding, guessed).

    A charset declared in the Content-Type header, a BOM or a ``<meta>`` wins when the
    body really decodes with it. Otherwise strict UTF-8 is tried, then a detector
    (charset-normalizer); ``guessed`` is true when no correct declaration was found and
    the body is not plain ASCII (GBK pages without a charset are the common case).
    """
    bom_encoding, bom = read_bom(body)
    if bom_encoding:
        return body[len(bom):].decode(bom_encoding, errors="replace"), bom_encoding, False
    for declared in (http_content_type_encoding(content_type or ""), html_body_declared_encoding(body)):
        encoding = _codec(declared)
        if encoding:
            try:
                return body.decode(encoding), encoding, False
            except (UnicodeDecodeError, LookupError):
                log.debug("declared charset %s does not decode the body", declared)
    try:
        return body.decode("utf-8"), "utf-8", not body.isascii()
    except UnicodeDecodeError:
        pass
    best = from_bytes(body).best()
    encoding = _codec(best.encoding) if best is not None else None
    return body.decode(encoding or "gb18030", errors="replace"), encoding or "gb18030", True


# --- text ---------------------------------------------------------------------

_BLOCK_TAGS = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table", "ul", "ol")


def _plain_text(tree) -> str:
    """All visible text of a document, one block per line (trafilatura's fallback)."""
    for bad in tree.xpath("//script|//style|//noscript|//template"):
        bad.drop_tree()
    for element in tree.iter(*_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
    body = tree.find("body")
    return (body if body is not None else tree).text_content()


def _html_text(html: str) -> tuple[str, str]:
    """HTML → (main text, title)."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ExtractionFailed(f"unparseable HTML: {exc}") from exc
    title = tree.findtext(".//title") or tree.xpath("string(//h1)") or ""
    text = trafilatura.extract(
        tree,
        include_comments=False,
        include_tables=True,
        include_links=False,
        favor_recall=True,
        deduplicate=False,
    )
    if not text or not text.strip():
        text = _plain_text(lxml.html.document_fromstring(html))
    return text, " ".join(title.split())


def _pdf_text(body: bytes) -> tuple[str, str]:
    """PDF → (text of every page, document title)."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(body))
    except pypdf.errors.PyPdfError as exc:
        raise ExtractionFailed(f"unreadable PDF: {exc}") from exc
    pages = [page.extract_text() or "" for page in reader.pages]
    title = (reader.metadata.title if reader.metadata else None) or ""
    return "\n".join(pages), str(title)


_ZH_DATE = r"(?P<y>\d{4})\s*[年./-]\s*(?P<m>\d{1,2})\s*[月./-]\s*(?P<d>\d{1,2})\s*日?"
_EN_DATE = (
    r"(?:(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<d1>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y1>\d{4})"
    r"|(?P<d2>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mon2>[A-Za-z]{3,9})\.?,?\s+(?P<y2>\d{4})"
    r"|(?P<y3>\d{4})-(?P<m3>\d{1,2})-(?P<d3>\d{1,2}))"
)
_DATE_PATTERNS = [
    re.compile(rf"(?:{'|'.join(_DATES['zh_effective'])})\s*[:：]?\s*{_ZH_DATE}"),
    re.compile(rf"{_ZH_DATE}\s*(?:起)?\s*(?:正式)?生效"),
    re.compile(rf"(?:{'|'.join(_DATES['en_effective'])})\s*[:：]?\s*{_EN_DATE}", re.I),
    re.compile(rf"(?:{'|'.join(_DATES['zh_updated'])})\s*[:：]?\s*{_ZH_DATE}"),
    re.compile(rf"(?:{'|'.join(_DATES['en_updated'])})\s*[:：]?\s*{_EN_DATE}", re.I),
]


def _iso(year: str, month: str | int | None, day: str) -> str | None:
    try:
        return date(int(year), int(month or 0), int(day)).isoformat()
    except (TypeError, ValueError):
        return None


def effective_date(text: str) -> str | None:
    """The policy's effective date as ISO ``YYYY-MM-DD`` (else its last-updated date), or None."""
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            g = match.groupdict()
            if g.get("y"):
                found = _iso(g["y"], g["m"], g["d"])
            elif g.get("y1"):
                found = _iso(g["y1"], _MONTHS.get(g["mon"].lower()), g["d1"])
            elif g.get("y2"):
                found = _iso(g["y2"], _MONTHS.get(g["mon2"].lower()), g["d2"])
            else:
                found = _iso(g["y3"], g["m3"], g["d3"])
            if found:
                return found
    return None


# --- versions -----------------------------------------------------------------


def is_pdf(body: bytes, content_type: str | None) -> bool:
    return body.lstrip()[:5] == b"%PDF-" or "pdf" in (content_type or "").lower()


def extract_policy(
    url: str, final_url: str, body: bytes, content_type: str | None, fetched_at: str
) -> tuple[PolicyVersion, tuple[str, ...]]:
    """Extract one fetched policy → (PolicyVersion, warnings). Raises :class:`ExtractionFailed`."""
    try:
        return _extract(url, final_url, body, content_type, fetched_at)
    except ExtractionFailed:
        raise
    except Exception as exc:  # third-party parsers on hostile input: one policy is lost, never the run
        raise ExtractionFailed(f"{type(exc).__name__}: {exc}") from exc


def _extract(url, final_url, body, content_type, fetched_at) -> tuple[PolicyVersion, tuple[str, ...]]:
    warnings: tuple[str, ...] = ()
    if is_pdf(body, content_type):
        raw, title, kind = *_pdf_text(body), "pdf"
    else:
        html, _, guessed = decode_body(body, content_type)
        warnings = (CHARSET_GUESSED,) if guessed else ()
        if "<" in html[:2048]:
            raw, title, kind = *_html_text(html), "html"
        else:
            raw, title, kind = html, "", "text"
    text = normalise_text(raw)
    if not text:
        raise ExtractionFailed("no text in the policy body")
    stated = effective_date(text)
    if stated is None and kind == "html":  # the date line is often dropped as page furniture
        stated = effective_date(normalise_text(_plain_text(lxml.html.document_fromstring(html))))
    version = PolicyVersion(
        url=url,
        final_url=final_url,
        fetched_at=fetched_at,
        sha256=sha256_hex(text),
        text=text,
        language=detect_language(text),
        title=title or text.split("\n", 1)[0][:120],
        effective_date=stated,
        content_type=kind,
    )
    return version, warnings


class PolicyExtractor:
    """Extracts policies, each distinct body only once (bounded cache keyed by the body's sha256).

    The extraction runs in the crawl's :class:`~crawler.workers.Workers`; a body that arrives while the
    same body is being extracted waits for that extraction instead of starting another.
    """

    def __init__(self, cache_size: int = 4096, workers: Workers | None = None) -> None:
        self._cache: dict[str, tuple[PolicyVersion, tuple[str, ...]] | ExtractionFailed] = {}
        self._running: dict[str, asyncio.Future] = {}
        self.cache_size = cache_size
        self.workers = workers or Workers(0)
        self.extracted = 0

    async def extract(
        self, url: str, final_url: str, body: bytes, content_type: str | None, fetched_at: str
    ) -> tuple[PolicyVersion, tuple[str, ...]]:
        key = sha256_hex(body) + "\x1f" + ("pdf" if is_pdf(body, content_type) else (content_type or ""))
        cached = self._cache.get(key)
        if cached is None:
            running = self._running.get(key)
            first = running is None
            if first:
                self.extracted += 1
                running = self._running[key] = asyncio.ensure_future(
                    self.workers.run(extract_policy, url, final_url, body, content_type, fetched_at))
            try:
                cached = await asyncio.shield(running)
            except ExtractionFailed as exc:
                cached = exc
            finally:
                if first:
                    del self._running[key]
            if first:
                if len(self._cache) >= self.cache_size:
                    del self._cache[next(iter(self._cache))]  # oldest first
                self._cache[key] = cached
        if isinstance(cached, ExtractionFailed):
            raise ExtractionFailed(str(cached))
        version, warnings = cached
        return dataclasses.replace(version, url=url, final_url=final_url, fetched_at=fetched_at), warnings


# --- one policy fetched outside a crawl (finmon check) ---------------------------------------------------------


class FetchRefused(Exception):
    """A policy URL that is not fetched: not http(s), a private address not allowed, too large, or unreachable."""


def fetch_policy(url: str, allow_hosts=(), timeout: float = 20.0, max_bytes: int = 5 * 1024 * 1024,
                 max_redirects: int = 5) -> tuple[str, bytes, str | None]:
    """GET one policy URL → (final URL, body, Content-Type), every hop through the crawl's URL guard
    (:mod:`crawler.urlguard`: http(s) only; loopback, private, link-local and reserved addresses refused unless
    an ``allow_hosts`` entry allows the host, or host:port; the connection goes to the address checked)."""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    from crawler.urlguard import UrlGuard, UrlRefused, guarded_connection

    guard = UrlGuard(allow_hosts)

    def connection(base, req):
        def make(host, **kwargs):
            conn = base(host, **kwargs)
            conn._create_connection = guarded_connection(guard, req.full_url)
            return conn
        return make

    class GuardedHTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(connection(http.client.HTTPConnection, req), req)

    class GuardedHTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(connection(http.client.HTTPSConnection, req), req, context=self._context)

    class GuardedRedirects(urllib.request.HTTPRedirectHandler):
        max_redirections = max_redirects

        def http_error_302(self, req, fp, code, msg, headers):
            target = headers.get("location") or headers.get("uri")
            if target:  # the scheme here; the address is checked when connecting
                guard.admits(urllib.parse.urljoin(req.full_url, target))
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), GuardedHTTP, GuardedHTTPS, GuardedRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "finmon-check", "Accept-Encoding": "identity"})
    try:
        guard.admits(url)
        with opener.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FetchRefused(f"the policy is larger than {max_bytes} bytes")
            return response.geturl(), body, response.headers.get("Content-Type")
    except UrlRefused as exc:
        raise FetchRefused(str(exc)) from None
    except urllib.error.HTTPError as exc:
        raise FetchRefused(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FetchRefused(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None
