"""Google Play parsers on real pages recorded from the live store (fixtures/SOURCES.md) and on altered copies."""
import json
import re

import pytest

from crawler.parsers import (FieldMalformed, LayoutChanged, MalformedResponse, parse_file,
                             parse_googleplay_datasafety, parse_googleplay_details, parse_googleplay_permissions,
                             parse_googleplay_search)

MINECRAFT = "https://play.google.com/store/apps/details?id=com.mojang.minecraftpe&hl=en"
TRANSLATE = "https://play.google.com/store/apps/details?id=com.google.android.apps.translate&hl=en"
_DATA = re.compile(r"(data:)(.*?)(, sideChannel: \{\}\}\);</script>)", re.S)


def _edit(html: str, change) -> str:
    """``html`` with the JSON of its AF_initDataCallback blocks changed by ``change(data)``."""
    def one(match):
        data = json.loads(match.group(2))
        change(data)
        return match.group(1) + json.dumps(data, ensure_ascii=False) + match.group(3)
    return _DATA.sub(one, html)


def test_real_details_page_parses_completely(fx):
    listing = parse_googleplay_details(fx.text("googleplay_details_minecraft.html"), MINECRAFT)
    assert (listing.store, listing.store_id, listing.package) == ("googleplay", "com.mojang.minecraftpe",
                                                                  "com.mojang.minecraftpe")
    assert (listing.name, listing.developer) == ("Minecraft: Dream it, Build it!", "Mojang")
    assert listing.legal_entity == "Microsoft Corporation"  # the legal owner, not the name shown
    assert listing.legal_address == "1 Microsoft Way\nRedmond, WA 98052\nUnited States"
    assert listing.developer_email == "help@minecraft.net"
    assert (listing.category, listing.version, listing.updated) == ("Arcade", "1.26.32.2", "2026-06-24")
    assert listing.privacy_url == "http://go.microsoft.com/fwlink/?LinkId=521839"
    assert listing.downloads == 91130079 and listing.description.startswith("Dive into an open world")
    assert "<br>" not in listing.description and listing.content_hash


def test_real_details_page_of_an_app_whose_version_varies_with_device(fx):
    problems = []
    listing = parse_googleplay_details(fx.text("googleplay_details_translate.html"), TRANSLATE, problems=problems)
    assert (listing.name, listing.developer, listing.legal_entity) == ("Google Translate", "Google LLC", "Google LLC")
    assert listing.version == "" and listing.updated == "2026-07-06" and problems == []
    assert listing.privacy_url == "http://www.google.com/policies/privacy/"


def test_details_package_from_the_canonical_link_when_the_url_has_none(fx):
    listing = parse_googleplay_details(fx.text("googleplay_details_minecraft.html"), "file:///tmp/page.html")
    assert listing.package == "com.mojang.minecraftpe"


def test_details_fields_sent_in_a_trailing_object_keyed_by_field_number(fx):
    """Some pages send the tail of the record as an object keyed by field number (index + 1)."""
    def move_updated(data):
        record = data[1][2] if isinstance(data, list) and len(data) > 1 and isinstance(data[1], list) else None
        if isinstance(record, list) and len(record) > 145 and record[145]:
            record.append({"146": record[145]})
            record[145] = None
    listing = parse_googleplay_details(_edit(fx.text("googleplay_details_minecraft.html"), move_updated), MINECRAFT)
    assert listing.updated == "2026-06-24"


def test_details_layout_changed_names_the_missing_fields(fx, tmp_path):
    def drop_name(data):
        if isinstance(data, list) and len(data) > 1 and isinstance(data[1], list) and len(data[1]) > 2:
            data[1][2][0] = None
    page = tmp_path / "details.html"
    page.write_text(_edit(fx.text("googleplay_details_minecraft.html"), drop_name), encoding="utf-8")
    with pytest.raises(LayoutChanged) as info:
        parse_file("googleplay", page, MINECRAFT)
    assert info.value.missing == ("name",) and "layout changed" in str(info.value)
    with pytest.raises(LayoutChanged) as info:
        parse_googleplay_details("<html><body>Not Found</body></html>", MINECRAFT)
    assert "app record" in info.value.missing[0]


def test_details_field_of_the_wrong_type_costs_that_field(fx):
    def number_for_email(data):
        if isinstance(data, list) and len(data) > 1 and isinstance(data[1], list) and len(data[1]) > 2:
            data[1][2][69][1][0] = 12345
    problems = []
    listing = parse_googleplay_details(_edit(fx.text("googleplay_details_minecraft.html"), number_for_email),
                                       MINECRAFT, problems=problems)
    assert listing.developer_email == "" and listing.legal_entity == "Microsoft Corporation"
    assert [(p.item, p.field) for p in problems] == [("com.mojang.minecraftpe", "developer_email")]
    assert isinstance(problems[0], FieldMalformed)


def test_real_data_safety_page_parses_every_category(fx):
    declared = parse_googleplay_datasafety(fx.text("googleplay_datasafety_translate.html"))
    assert declared["shared"] == []  # "No data shared with third parties"
    categories = {entry["category"] for entry in declared["collected"]}
    assert categories == {"Personal info", "Device or other IDs", "App activity", "Location", "Photos and videos",
                          "App info and performance", "Contacts"}
    assert {"category": "Location", "type": "Approximate location", "optional": False, "purpose": "Analytics"} in \
        declared["collected"]
    name = next(e for e in declared["collected"] if e["type"] == "Name")
    assert name == {"category": "Personal info", "type": "Name", "optional": True, "purpose": "Account management"}
    assert declared["practices"] == ["Data is encrypted in transit", "You can request that data be deleted",
                                     "Independent security review"]


def test_data_safety_not_provided_and_no_data_collected(fx):
    html = fx.text("googleplay_datasafety_translate.html")

    def drop_section(data):
        record = data[1][2][1] if isinstance(data, list) and len(data) > 1 else None
        if isinstance(record, dict):
            del record["138"]
    assert parse_googleplay_datasafety(_edit(html, drop_section)) is None  # the developer gave no information

    def collect_nothing(data):
        record = data[1][2][1] if isinstance(data, list) and len(data) > 1 else None
        if isinstance(record, dict):
            record["138"][4][1] = [None, "No data collected"]
    assert parse_googleplay_datasafety(_edit(html, collect_nothing))["collected"] == []


def test_data_safety_layout_changed(fx, tmp_path):
    def drop_record(data):
        if isinstance(data, list) and len(data) > 1 and isinstance(data[1], list):
            data[1][2] = [data[1][2][0]]
    page = tmp_path / "datasafety.html"
    page.write_text(_edit(fx.text("googleplay_datasafety_translate.html"), drop_record), encoding="utf-8")
    with pytest.raises(LayoutChanged) as info:
        parse_file("googleplay-datasafety", page)
    assert "Data safety record" in info.value.missing[0]


def test_real_permission_list_maps_every_label(fx):
    permissions = parse_googleplay_permissions(fx.bytes("googleplay_permissions_translate.txt"))
    assert {"android.permission.READ_SMS", "android.permission.CAMERA", "android.permission.RECORD_AUDIO",
            "android.permission.GET_ACCOUNTS", "android.permission.READ_EXTERNAL_STORAGE",
            "android.permission.INTERNET"} <= set(permissions)
    assert not [p for p in permissions if p.startswith("unmapped-label:")]


def test_permission_list_errors(fx, tmp_path):
    assert parse_googleplay_permissions(')]}\'\n\n[["wrb.fr","xdSrCf",null,null,null,null,"1"]]') == ()
    unknown = parse_googleplay_permissions(
        ')]}\'\n\n' + json.dumps([["wrb.fr", "xdSrCf", json.dumps([[["X", None, [[None, "do something new"]]]]]),
                                  None, None, None, "1"]]))
    assert unknown == ("unmapped-label:do something new",)
    with pytest.raises(MalformedResponse):
        parse_googleplay_permissions("<html>captcha</html>")
    page = tmp_path / "permissions.txt"
    page.write_text(fx.text("googleplay_permissions_translate.txt").replace('"xdSrCf"', '"other"'), encoding="utf-8")
    with pytest.raises(LayoutChanged) as info:
        parse_file("googleplay-permissions", page)
    assert info.value.missing == ("xdSrCf frame",)


def test_real_search_page(fx, tmp_path):
    packages, more = parse_googleplay_search(fx.text("googleplay_search_panda.html"))
    assert packages == ["com.pandaexpress.app", "com.sinyee.babybus.restaurant", "com.yq.xmmg.gp"]
    assert more is None  # the real page offered no continuation token
    page = tmp_path / "search.html"
    page.write_text(re.sub(r"AF_initDataCallback\(\{key: 'ds:4'.*?</script>", "", fx.text(
        "googleplay_search_panda.html"), flags=re.S), encoding="utf-8")
    with pytest.raises(LayoutChanged) as info:
        parse_file("googleplay-search", page)
    assert "search result sections" in info.value.missing[0]
