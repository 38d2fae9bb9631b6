"""Fuzzing the store parsers from the saved fixtures: whatever a store sends, a parser returns what it could read
or raises the project's own ParseError (LayoutChanged, MalformedResponse, FieldMalformed); nothing else escapes.

Mutations of the JSON fixtures: a value replaced by one of another type, a key deleted, a list turned into a
string and a string into a list, a value buried in deep nesting. Of the HTML fixtures: spans deleted, doubled or
replaced with markup, and deep nesting. Bounded and derandomized, so CI runs the same examples every time.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.parsers import (
    FieldMalformed,
    ParseError,
    parse_apple_page,
    parse_appgallery_detail,
    parse_appgallery_search,
    parse_itunes_search,
    parse_xiaomi_detail,
    parse_xiaomi_search,
)
from crawler.parsers import (parse_googleplay_datasafety, parse_googleplay_details, parse_googleplay_permissions,
                             parse_googleplay_search, parse_myapp_category, parse_myapp_detail, parse_myapp_search)

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://store.example/details?id=com.example.app"
DEEP = "\x00deep\x00"  # a placeholder the serialiser replaces with deeply nested JSON
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JSON_PARSERS: dict[str, Callable[[bytes], Any]] = {
    "itunes_search.json": lambda body: parse_itunes_search(body, problems=[]),
    "appgallery_search.json": lambda body: parse_appgallery_search(body, problems=[]),
    "appgallery_detail.json": lambda body: parse_appgallery_detail(body, URL, problems=[]),
    "appgallery_detail_no_policy.json": lambda body: parse_appgallery_detail(body, URL, problems=[]),
    "myapp_search_real.json": lambda body: parse_myapp_search(body, problems=[]),
    "myapp_category.json": lambda body: parse_myapp_category(body, problems=[]),
}
HTML_PARSERS: dict[str, Callable[[str], Any]] = {
    "apple_app_page.html": lambda html: parse_apple_page(html, URL, problems=[]),
    "xiaomi_search.html": lambda html: parse_xiaomi_search(html, URL, problems=[]),
    "xiaomi_detail.html": lambda html: parse_xiaomi_detail(html, URL, problems=[]),
    "myapp_detail_real.html": lambda html: parse_myapp_detail(html, URL, problems=[]),
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), st.just(""), st.just(DEEP))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                             max_size=3), max_leaves=6)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a value inside ``node``."""
    found = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, path + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, path + (index,))
    return found


def _mutate(data: st.DataObject, doc: Any) -> Any:
    """One mutation of ``doc`` (in place where possible); returns the document."""
    path = data.draw(st.sampled_from(_paths(doc)))
    if not path:
        return data.draw(values)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    key, old = path[-1], parent[path[-1]]
    how = data.draw(st.sampled_from(["replace", "delete", "list_string", "deep"]))
    if how == "delete":
        del parent[key]
    elif how == "list_string":
        parent[key] = (",".join(map(str, old)) if isinstance(old, list) else [old] if isinstance(old, str)
                       else str(old))
    elif how == "deep":
        parent[key] = DEEP
    else:
        parent[key] = data.draw(values)
    return doc


def _serialise(doc: Any, depth: int) -> bytes:
    text = json.dumps(doc, ensure_ascii=False)
    return text.replace(json.dumps(DEEP), "[" * depth + "1" + "]" * depth).encode("utf-8")


def _only_parse_errors(parse: Callable, body: Any) -> None:
    try:
        parse(body)
    except ParseError:
        pass


@pytest.mark.parametrize("name", sorted(JSON_PARSERS))
@FUZZ
@given(data=st.data())
def test_json_parsers_survive_mutated_fixtures(name, data):
    doc = json.loads((FIXTURES / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        doc = _mutate(data, doc)
    depth = data.draw(st.sampled_from([2, 50, 5_000, 200_000]))
    _only_parse_errors(JSON_PARSERS[name], _serialise(doc, depth))


def _html_edit(data: st.DataObject, html: str) -> str:
    start = data.draw(st.integers(0, len(html)))
    end = data.draw(st.integers(start, min(len(html), start + 400)))
    how = data.draw(st.sampled_from(["delete", "double", "markup", "deep", "json"]))
    if how == "json":  # a JSON body where a page was expected (parsel would read it as JSON unless told HTML)
        depth = data.draw(st.sampled_from([1, 5_000, 100_000]))
        return "[" * depth + "]" * depth
    if how == "delete":
        return html[:start] + html[end:]
    if how == "double":
        return html[:end] + html[start:end] + html[end:]
    if how == "deep":
        depth = data.draw(st.sampled_from([50, 5_000, 100_000]))
        return html[:start] + "<div>" * depth + html[start:end] + "</div>" * depth + html[end:]
    markup = data.draw(st.sampled_from(['<a href="http://[::1">隐私政策</a>', "<li>包名：</li>", "<li></li>",
                                        '<ul class="applist"><li><a href="details?id=">x</a></li></ul>',
                                        "<section class=\"app-privacy\">", "\x00\ufffd", "<!--", "<![CDATA["]))
    return html[:start] + markup + html[end:]


@pytest.mark.parametrize("name", sorted(HTML_PARSERS))
@FUZZ
@given(data=st.data())
def test_html_parsers_survive_mutated_fixtures(name, data):
    html = (FIXTURES / name).read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        html = _html_edit(data, html)
    _only_parse_errors(HTML_PARSERS[name], html)


def test_a_wrong_typed_field_in_one_result_costs_that_field_only():
    """The issue's case: ``"currentVersionReleaseDate": 12345`` in one result no longer loses the page."""
    doc = json.loads((FIXTURES / "itunes_search.json").read_bytes())
    doc["results"][0]["currentVersionReleaseDate"] = 12345
    doc["results"][1]["trackName"] = 67890
    problems: list[ParseError] = []
    listings = parse_itunes_search(json.dumps(doc), problems=problems)
    assert len(listings) == len(doc["results"]) - 1 and listings[0].updated == ""
    assert [(p.kind, p.item, p.field) for p in problems] == [
        ("malformed_field", str(doc["results"][0]["trackId"]), "currentVersionReleaseDate"),
        ("malformed_field", str(doc["results"][1]["trackId"]), "trackName")]


@pytest.mark.parametrize("field", ["name", "releaseDate", "intro", "appIntro", "developer"])
def test_the_simulators_wrong_typed_appgallery_fields_cost_the_field_or_the_item(field):
    """Each wrong-typed value the simulator serves (population.json wrong_type_fields), in the card it serves it in:
    an optional field costs that field, a required one the listing; either way the problem names item and field."""
    from market.population import GEN
    from market.server import APPGALLERY_FIELD_CARDS

    value = GEN["faults"]["wrong_type_fields"]["appgallery"][field]
    doc = json.loads((FIXTURES / "appgallery_detail.json").read_bytes())
    for layout in doc["layoutData"]:
        if layout["layoutName"] == APPGALLERY_FIELD_CARDS[field]:
            layout["dataList"][0][field] = value
    problems: list[ParseError] = []
    try:
        parse_appgallery_detail(json.dumps(doc), URL, problems=problems)
    except FieldMalformed as exc:
        problems.append(exc)
        assert field in ("name", "developer")
    assert [(p.kind, p.item, p.field) for p in problems] == [("malformed_field", "C10132067", field)]


def test_appgallery_permissions_as_plain_strings_are_read():
    doc = json.loads((FIXTURES / "appgallery_detail.json").read_bytes())
    expected = parse_appgallery_detail(json.dumps(doc), URL).permissions
    for layout in doc["layoutData"]:
        if layout["layoutName"] == "appdetailpermissioncard":
            for card in layout["dataList"]:
                card["permissions"] = [p["desc"] if i % 2 or "name" not in p else p["name"]
                                       for i, p in enumerate(card["permissions"])]
    problems: list[ParseError] = []
    assert sorted(parse_appgallery_detail(json.dumps(doc), URL, problems=problems).permissions) == sorted(expected)
    assert problems == []


def test_appgallery_permissions_as_one_string_cost_that_field():
    doc = json.loads((FIXTURES / "appgallery_detail.json").read_bytes())
    for layout in doc["layoutData"]:
        if layout["layoutName"] == "appdetailpermissioncard":
            layout["dataList"][0]["permissions"] = "android.permission.CAMERA"
    problems: list[ParseError] = []
    listing = parse_appgallery_detail(json.dumps(doc), URL, problems=problems)
    assert listing.permissions == () and [(p.kind, p.field) for p in problems] == [("malformed_field", "permissions")]


def test_a_xiaomi_detail_link_that_is_not_a_url_costs_that_entry():
    html = (FIXTURES / "xiaomi_search.html").read_text(encoding="utf-8")
    expected, _ = parse_xiaomi_search(html, URL)
    broken = html.replace('<ul class="applist">', '<ul class="applist"><li><a href="http://[::1/details?id=x">x</a></li>', 1)
    problems: list[ParseError] = []
    urls, _ = parse_xiaomi_search(broken, URL, problems=problems)
    assert urls == expected and [(p.kind, p.item, p.field) for p in problems] == [("malformed_field", "applist[0]", "href")]


def test_a_policy_link_that_is_not_a_url_costs_that_field():
    html = (FIXTURES / "apple_app_page.html").read_text(encoding="utf-8")
    good, _ = parse_apple_page(html, URL)
    assert good
    problems: list[ParseError] = []
    privacy_url, labels = parse_apple_page(html.replace(good, "http://[::1/privacy"), URL, problems=problems)
    assert privacy_url is None and labels and [(p.kind, p.field) for p in problems] == [("malformed_field", "privacy_url")]


@FUZZ
@given(data=st.data())
def test_myapp_page_survives_a_mutated_next_data_record(data):
    """The app page's data is JSON inside the HTML: mutate that JSON (the GameDetail record and the envelope around
    it) as the JSON fixtures are, and put it back in the page."""
    html = (FIXTURES / "myapp_detail_real.html").read_text(encoding="utf-8")
    start = html.index('type="application/json">') + len('type="application/json">')
    end = html.index("</script>", start)
    doc = json.loads(html[start:end])
    focus = data.draw(st.sampled_from(["record", "envelope", "page"]))
    if focus == "record":
        target = doc["props"]["pageProps"]["dynamicCardResponse"]["data"]["components"][1]["data"]["itemData"][0]
    elif focus == "envelope":
        target = doc["props"]["pageProps"]["dynamicCardResponse"]
    else:
        target = doc
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate(data, target)
    depth = data.draw(st.sampled_from([2, 50, 5_000, 200_000]))
    _only_parse_errors(lambda body: parse_myapp_detail(body, URL, problems=[]),
                       html[:start] + _serialise(doc, depth).decode("utf-8") + html[end:])


def test_myapp_record_fields_of_any_type_cost_the_field_or_the_listing():
    """Each field the parser reads, set to a value of each other type: a required field costs the listing
    (LayoutChanged or FieldMalformed), an optional one that field (a problem naming it); nothing else escapes."""
    html = (FIXTURES / "myapp_detail_real.html").read_text(encoding="utf-8")
    start = html.index('type="application/json">') + len('type="application/json">')
    end = html.index("</script>", start)
    fields = ("pkg_name", "name", "developer", "app_id", "cate_name", "cate_name_new", "download_num", "version_name",
              "update_time", "description", "editor_intro", "privacy_agreement", "permissions_list", "download_url",
              "apk_url")
    for field in fields:
        for value in (None, 12, 1.5, True, [], ["x"], {"a": 1}, "", "x", -5, 10 ** 30):
            doc = json.loads(html[start:end])
            doc["props"]["pageProps"]["dynamicCardResponse"]["data"]["components"][1]["data"]["itemData"][0][field] = value
            problems: list[ParseError] = []
            try:
                parse_myapp_detail(html[:start] + json.dumps(doc, ensure_ascii=False) + html[end:], URL,
                                   problems=problems)
            except ParseError as exc:
                assert field in ("pkg_name", "name", "developer"), (field, value, exc)
                continue
            assert all(p.field.startswith(field) or field == "app_id" for p in problems), (field, value, problems)


GOOGLE_PLAY_PAGES: dict[str, Callable[[str], Any]] = {
    "googleplay_details_minecraft.html": lambda html: parse_googleplay_details(html, URL, problems=[]),
    "googleplay_datasafety_translate.html": lambda html: parse_googleplay_datasafety(html, problems=[]),
    "googleplay_search_panda.html": lambda html: parse_googleplay_search(html, problems=[]),
}


@pytest.mark.parametrize("name", sorted(GOOGLE_PLAY_PAGES))
@FUZZ
@given(data=st.data())
def test_google_play_pages_survive_mutated_data_blocks(name, data):
    """A Google Play page's data is JSON inside an AF_initDataCallback script: mutate it (the app record, or the
    whole block) as the JSON fixtures are, and put it back in the page."""
    html = (FIXTURES / name).read_text(encoding="utf-8")
    start = html.index("data:", html.index("AF_initDataCallback")) + len("data:")
    end = html.index(", sideChannel: {}});</script>", start)
    doc = json.loads(html[start:end])
    record = doc[1][2] if name.startswith("googleplay_details") else doc
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate(data, data.draw(st.sampled_from([record, doc])))
    depth = data.draw(st.sampled_from([2, 50, 5_000, 200_000]))
    _only_parse_errors(GOOGLE_PLAY_PAGES[name], html[:start] + _serialise(doc, depth).decode("utf-8") + html[end:])


@FUZZ
@given(data=st.data())
def test_google_play_permission_answer_survives_a_mutated_payload(data):
    frames = json.loads((FIXTURES / "googleplay_permissions_translate.txt").read_text(encoding="utf-8")[4:].strip())
    payload = json.loads(frames[0][2])
    for _ in range(data.draw(st.integers(1, 4))):
        payload = _mutate(data, payload)
    depth = data.draw(st.sampled_from([2, 50, 5_000, 200_000]))
    frames[0][2] = _serialise(payload, depth).decode("utf-8")
    _only_parse_errors(lambda body: parse_googleplay_permissions(body, problems=[]), ")]}'\n\n" + json.dumps(frames))
