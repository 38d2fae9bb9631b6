import asyncio

import pytest

from crawler.policy import (
    CHARSET_GUESSED,
    ExtractionFailed,
    PolicyExtractor,
    decode_body,
    effective_date,
    extract_policy,
)
from crawler.workers import Workers
from finmon.model import normalise_text, sha256_hex
from tests.support import loopback_page

NOW = "2024-06-01T00:00:00+00:00"
URL = "http://127.0.0.1/policies/anxin/p1.html"


def test_html_policy_main_text_without_boilerplate(fx):
    version, warnings = extract_policy(URL, URL, fx.bytes("policy_zh.html"), "text/html; charset=utf-8", NOW)
    assert warnings == ()
    assert version.content_type == "html" and version.language == "zh"
    assert version.title == "安心借款隐私政策"
    assert version.effective_date == "2024-03-01"  # 生效日期 wins over 更新日期
    assert "我们会收集您的手机号码" in version.text
    assert "我们不会收集您的通讯录。" in version.text
    for boilerplate in ("下载客户端", "粤ICP备", "window.__CONFIG__"):
        assert boilerplate not in version.text
    assert version.text == normalise_text(version.text)
    assert version.sha256 == sha256_hex(version.text)
    assert (version.url, version.final_url, version.fetched_at) == (URL, URL, NOW)


def test_gbk_page_without_charset_is_decoded(fx):
    body = fx.bytes("policy_zh_gbk.htm")
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert b"charset" not in body.lower()
    version, warnings = extract_policy(URL, URL, body, "text/html", NOW)
    assert warnings == (CHARSET_GUESSED,)
    assert "我们会收集您的手机号码" in version.text
    utf8_version, _ = extract_policy(URL, URL, fx.bytes("policy_zh.html"), "text/html; charset=utf-8", NOW)
    assert version.sha256 == utf8_version.sha256  # same text whatever the encoding


def test_wrong_declared_charset_falls_back_to_detection(fx):
    version, warnings = extract_policy(URL, URL, fx.bytes("policy_zh_gbk.htm"), "text/html; charset=utf-8", NOW)
    assert warnings == (CHARSET_GUESSED,)
    assert "身份证号码" in version.text


def test_decode_body_prefers_a_correct_declaration():
    body = "<html><head><meta charset='gbk'></head><body>隐私政策</body></html>".encode("gbk")
    text, encoding, guessed = decode_body(body, "text/html")
    assert "隐私政策" in text and encoding == "gb18030" and not guessed
    text, encoding, guessed = decode_body("隐私".encode("utf-8"), None)
    assert (text, encoding, guessed) == ("隐私", "utf-8", True)
    assert decode_body(b"plain ascii", None) == ("plain ascii", "utf-8", False)


@pytest.mark.parametrize("label", ["gbk", "GB2312", "x-gbk"])
def test_a_gbk_label_decodes_as_gb18030(label):
    # As in browsers: a page labelled GBK may hold characters only gb18030 encodes (four bytes).
    body = f"<meta charset='{label}'><p>隐私政策 㐀 €</p>".encode("gb18030")
    text, encoding, guessed = decode_body(body, None)
    assert "隐私政策 㐀 €" in text and encoding == "gb18030" and not guessed


def test_pdf_policy(fx):
    version, warnings = extract_policy(URL, URL, fx.bytes("policy_zh.pdf"), "application/pdf", NOW)
    assert version.content_type == "pdf" and warnings == ()
    assert version.title == "稳盈理财隐私政策"
    assert version.language == "zh"
    assert version.effective_date == "2024-03-01"
    assert "我们会收集您的银行卡号" in version.text


def test_english_policy(fx):
    version, _ = extract_policy(URL, URL, fx.bytes("policy_en.html"), "text/html", NOW)
    assert version.language == "en"
    assert version.effective_date == "2024-03-01"
    assert version.title == "Privacy Policy - Harbor Securities"
    assert "We do not collect your contacts." in version.text
    assert "All rights reserved" not in version.text


def test_plain_text_fallback_for_short_pages():
    body = "<html><head><title>隐私政策</title></head><body><p>我们收集手机号码。</p></body></html>".encode()
    version, _ = extract_policy(URL, URL, body, "text/html; charset=utf-8", NOW)
    assert version.text == "我们收集手机号码。"


@pytest.mark.parametrize(
    "body",
    [b"", b"<html><body>   </body></html>", b"%PDF-1.4 this is not a pdf", b"<html><script>x=1</script></html>"],
)
def test_extraction_failed(body):
    with pytest.raises(ExtractionFailed):
        extract_policy(URL, URL, body, "text/html", NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("生效日期：2024年3月1日", "2024-03-01"),
        ("更新日期: 2023-12-05\n生效时间：2024年1月2日", "2024-01-02"),
        ("本政策自2024年5月6日起生效。", "2024-05-06"),
        ("最近更新：2022/7/8", "2022-07-08"),
        ("Effective date: March 1, 2024", "2024-03-01"),
        ("This policy is effective as of 5 June 2023.", "2023-06-05"),
        ("Last updated: Sept. 9, 2021", "2021-09-09"),
        ("Effective Date: 2024-02-30", None),  # not a date
        ("没有日期", None),
    ],
)
def test_effective_date(text, expected):
    assert effective_date(text) == expected




def extracted(extractor, *calls):
    """The extractor's results (or ExtractionFailed) for each (url, body) call, side by side on one event loop."""
    async def each():
        return await asyncio.gather(*(extractor.extract(url, url.replace("q", "r"), body, "text/html", NOW)
                                      for url, body in calls), return_exceptions=True)

    return asyncio.run(each())


def test_extractor_extracts_each_body_once(fx):
    extractor = PolicyExtractor()
    body = fx.bytes("policy_zh.html")
    (a, _), = extracted(extractor, ("http://a/p.html", body))
    (b, _), = extracted(extractor, ("http://b/q.html", body))
    assert extractor.extracted == 1
    assert a.sha256 == b.sha256 and (b.url, b.final_url) == ("http://b/q.html", "http://b/r.html")
    failures = extracted(extractor, ("http://c/", b""), ("http://d/", b""))
    assert all(isinstance(f, ExtractionFailed) for f in failures)
    assert extractor.extracted == 2


def test_extractor_in_a_worker_process_extracts_a_body_arriving_twice_at_once_once(fx):
    workers = Workers(1)
    try:
        extractor = PolicyExtractor(workers=workers)
        body = fx.bytes("policy_zh.html")
        (a, _), (b, _), failed = extracted(extractor, ("http://a/p", body), ("http://b/q", body), ("http://c/", b"<p>"))
        assert extractor.extracted == 2 and a.sha256 == b.sha256 and "手机号码" in a.text
        assert (a.url, b.url, b.final_url) == ("http://a/p", "http://b/q", "http://b/r")
        assert isinstance(failed, ExtractionFailed)
    finally:
        workers.close()


def test_extractor_cache_is_bounded(fx):
    extractor = PolicyExtractor(cache_size=1)
    zh, en = fx.bytes("policy_zh.html"), fx.bytes("policy_en.html")
    for body in (zh, en, zh):
        extracted(extractor, ("http://a/", body))
    assert extractor.extracted == 3


def test_hostile_input_is_an_extraction_failure(monkeypatch, fx):
    def boom(*args, **kwargs):
        raise RecursionError("deeply nested")

    monkeypatch.setattr("trafilatura.extract", boom)
    with pytest.raises(ExtractionFailed, match="RecursionError"):
        extract_policy(URL, URL, fx.bytes("policy_zh.html"), "text/html", NOW)


# --- fetch_policy (finmon check URL): the crawl's URL guard on every hop ------------------------------------


@pytest.fixture
def policy_server():
    """A loopback server: /policy answers a page, /to?url=U redirects to U."""
    with loopback_page("<p>我们会收集您的手机号码。</p>") as host_port:
        yield host_port


def test_fetch_policy_allows_the_allowed_port_only(policy_server):
    from crawler.policy import FetchRefused, fetch_policy

    url = f"http://{policy_server}/policy"
    final, body, content_type = fetch_policy(url, [policy_server])
    assert final == url and "手机号码" in body.decode() and content_type.startswith("text/html")
    assert fetch_policy(url, ["127.0.0.1"])[0] == url  # a host without a port: any port
    with pytest.raises(FetchRefused, match="private address"):
        fetch_policy(url)
    with pytest.raises(FetchRefused, match="private address"):
        fetch_policy(url, ["127.0.0.1:1"])


@pytest.mark.parametrize("target, message", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254:80, a private address"),
    ("http://10.0.0.1:8080/p.html", "10.0.0.1:8080, a private address"),
    ("http://127.0.0.1:1/p.html", "127.0.0.1:1, a private address"),
    ("http://localhost:{port}/policy", "resolves to 127.0.0.1"),
    ("file:///etc/hostname", "not an http\\(s\\) URL"),
])
def test_fetch_policy_refuses_redirects_into_private_ranges_and_files(policy_server, target, message):
    from urllib.parse import quote

    from crawler.policy import FetchRefused, fetch_policy

    target = target.format(port=policy_server.rsplit(":", 1)[1])
    with pytest.raises(FetchRefused, match=message):
        fetch_policy(f"http://{policy_server}/to?url={quote(target, safe='')}", [policy_server])
