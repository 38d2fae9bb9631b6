"""The synthetic population and its ground truth."""
from __future__ import annotations

import collections
import re

import pytest

from finmon import settings
from market.population import GEN, RULES, TEMPLATES, TERMS, Market, expected, policy_document

RULE_IDS = ("P101", "P102", "C201", "C202", "D301")
APK_RULE_IDS = ("S401", "S402", "D303", "V501", "V502", "V503", "V504", "V505")  # from the APK: rarer
LISTING_RULE_IDS = ("R603", "D304", "D305")  # from how the stores list an app (Google Play for D304/D305)
ALL_TERMS = {t for lang in ("zh", "en") for terms in TERMS[lang].values() for t in terms}


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(apps=600, seed=7)


@pytest.fixture(scope="module")
def truth(market: Market) -> dict:
    return market.truth()


def _term_finder(lang: str) -> tuple[re.Pattern, dict[str, str]]:
    """Leftmost-longest matcher over one language's data-type terms, and term → data type."""
    owner = {t: dtype for dtype, terms in TERMS[lang].items() for t in terms}
    pattern = re.compile("|".join(re.escape(t) for t in sorted(owner, key=len, reverse=True)))
    return pattern, owner


def _sentences(text: str, lang: str) -> list[str]:
    if lang == "zh":
        return [s + "。" for s in text.split("。") if s]
    return [s.strip() for s in re.split(r"(?<=\.)\s+", text) if s.strip()]


def test_same_seed_same_truth_and_different_seed_differs(truth: dict) -> None:
    assert Market(apps=600, seed=7).truth() == truth
    other = Market(apps=600, seed=8).truth()
    assert other["app_list"] != truth["app_list"]
    assert (truth["apps"], truth["seed"]) == (600, 7)


def test_app_i_does_not_depend_on_population_size(truth: dict) -> None:
    small = Market(apps=50, seed=7).truth()["app_list"]
    assert small == truth["app_list"][:50]


def test_cards_agree_with_full_apps(market: Market) -> None:
    fresh = Market(apps=600, seed=7)
    for card, app in zip(fresh.cards(), market):
        assert (card.key, card.name, card.stores, card.description) == (app.key, app.name, app.stores,
                                                                       app.description)


def test_truth_shape(truth: dict) -> None:
    keys = [a["key"] for a in truth["app_list"]]
    assert len(keys) == len(set(keys)) == 600
    for a in truth["app_list"]:
        assert a["key"] == f"{a['platform']}:{a['package']}"
        assert a["finance_type"] in RULES["finance_types"]
        if a["platform"] == "ios":
            assert a["stores"] == ["itunes"] and a["permissions"] == []
        else:
            assert a["stores"] and set(a["stores"]) <= {"appgallery", "xiaomi", "googleplay", "myapp"}
            assert set(a["stores"]) & {"appgallery", "xiaomi"}  # the stores drawn first; the others come on top
            assert all(p.startswith("android.permission.") for p in a["permissions"])
        policy = a["policy"]
        assert policy["variant"] in ("html", "gbk", "pdf", "missing", "none")
        assert (policy["url"] is None) == (policy["variant"] == "none")
        assert not set(policy["declared"]) & set(policy["negated"])
        assert set(a["expected"]) <= set(RULE_IDS + APK_RULE_IDS + LISTING_RULE_IDS)
        assert (a["apk"] is not None) == (a["platform"] == "android")


def test_population_mix(truth: dict) -> None:
    apps = truth["app_list"]
    n = len(apps)
    ios = [a for a in apps if a["platform"] == "ios"]
    android_keys = {a["package"] for a in apps if a["platform"] == "android"}
    twins = [a for a in ios if a["package"] in android_keys]
    assert 0.2 < len(ios) / n < 0.4 and twins
    both = [a for a in apps if {"appgallery", "xiaomi"} <= set(a["stores"])]
    assert len(both) > 0.5 * (n - len(ios))
    android = n - len(ios)
    for store, share in (("googleplay", 0.3), ("myapp", 0.6)):
        listed = sum(store in a["stores"] for a in apps)
        assert share - 0.1 < listed / android < share + 0.1, store
    assert {a["finance_type"] for a in apps} == set(RULES["finance_types"])
    variants = collections.Counter(a["policy"]["variant"] for a in apps)
    assert set(variants) == {"html", "gbk", "pdf", "missing", "none"}
    assert {a["policy"]["language"] for a in apps if a["policy"]["variant"] == "html"} == {"zh", "en"}
    by_url = collections.defaultdict(set)
    for a in apps:
        if a["policy"]["url"]:
            by_url[a["policy"]["url"]].add(a["package"])
    assert any(len(packages) > 1 for packages in by_url.values())  # shared by several apps of a developer
    developers = collections.Counter(a["developer"] for a in apps if a["platform"] == "android")
    assert any(count > 1 for count in developers.values())


def test_every_rule_fires_for_some_apps_and_not_for_others(truth: dict) -> None:
    for rule in RULE_IDS:
        firing = sum(rule in a["expected"] for a in truth["app_list"])
        assert 0.05 * truth["apps"] < firing < 0.8 * truth["apps"], rule
    for rule in APK_RULE_IDS + LISTING_RULE_IDS:
        firing = sum(rule in a["expected"] for a in truth["app_list"])
        assert 0 < firing < 0.8 * truth["apps"], rule
    lending = [a for a in truth["app_list"] if a["finance_type"] == "lending" and a["platform"] == "android"]
    assert any("P101" not in a["expected"] for a in lending)
    only_camera_or_phone = [a for a in truth["app_list"] if a["platform"] == "android" and {
        p for p in a["permissions"] if p.removeprefix("android.permission.") in RULES["dangerous_permissions"]}
        <= {"android.permission.CAMERA", "android.permission.READ_PHONE_STATE"}]
    assert only_camera_or_phone


def test_expected_follows_rule_semantics(truth: dict) -> None:
    dangerous = RULES["dangerous_permissions"]
    for a in truth["app_list"]:
        exp, policy = a["expected"], a["policy"]
        short = {p.removeprefix("android.permission.") for p in a["permissions"]}
        if a["platform"] == "ios":
            assert not {"P101", "P102", "D301"} & set(exp)
        assert ("C201" in exp) == (policy["variant"] in ("missing", "none"))
        if "C201" in exp:
            assert exp["C201"] == ["policy"] and "C202" not in exp and "D301" not in exp
        if "P101" in exp:
            assert a["finance_type"] == "lending"
            assert {p.removeprefix("android.permission.") for p in exp["P101"]} <= set(
                RULES["P101"]["forbidden_permissions"])
        assert not set(exp.get("P101", [])) & set(exp.get("P102", []))
        if "C202" in exp:
            assert a["finance_type"] in RULES["necessary_scope"]
            assert set(exp["C202"]) <= set(policy["declared"]) & set(RULES["C202"]["checked_types"])
        if a["platform"] == "android" and policy["variant"] in ("html", "gbk", "pdf"):
            needed = {dangerous[p] for p in short if p in dangerous}
            assert set(exp.get("D301", [])) == needed - set(policy["declared"])


def test_faults(market: Market, truth: dict) -> None:
    kinds = collections.Counter(f for a in truth["app_list"] for f in a["faults"])
    assert set(kinds) == {"appgallery_malformed_json", "xiaomi_503", "policy_500", "appgallery_transient_503",
                          "xiaomi_transient_503"}
    faulted = sum(bool(a["faults"]) for a in truth["app_list"])
    assert 0.01 * truth["apps"] < faulted < 0.08 * truth["apps"]
    for a in truth["app_list"]:
        if set(a["faults"]) - {"policy_500"}:
            assert {"appgallery", "xiaomi"} <= set(a["stores"])
        if "policy_500" in a["faults"]:
            assert a["policy"]["variant"] in ("html", "gbk", "pdf")
            assert "C201" not in a["expected"]  # the policy exists; a scorer decides what to expect


def test_names_and_descriptions_carry_the_keywords_and_no_data_type_terms(market: Market) -> None:
    keywords = RULES["search_keywords"]
    cues = GEN["name_cues"]
    for app in market:
        assert any(app.name.endswith(cue) for cue in cues[app.finance_type])
        for keyword in keywords[app.finance_type] + keywords["_all"]:
            assert keyword in app.description
        assert any(k in app.name or k in app.description for k in settings.FINMON_KEYWORDS)
        for text in (app.name, app.description, app.developer):
            assert not [t for t in ALL_TERMS if t.lower() in text.lower()], text


def test_policy_text_declares_exactly_what_the_truth_says(market: Market) -> None:
    policies = {a.policy.path: a.policy for a in market if a.policy.has_text}
    assert len(policies) > 100
    _check_policy_texts(market, policies.values())


def test_changed_policy_texts_declare_exactly_what_the_truth_says() -> None:
    later = Market(apps=600, seed=7, week=3)
    changed = {a.policy.path: a.policy for a in later if a.policy.revisions}
    assert len(changed) > 20
    _check_policy_texts(later, changed.values())


def _check_policy_texts(market: Market, policies) -> None:
    traps = {lang: TERMS["traps"][lang] for lang in ("zh", "en")}
    for policy in policies:
        doc = policy_document(market.seed, policy)
        pattern, owner = _term_finder(policy.language)
        keep = set(doc["keep_together"])
        affirmed, denied = set(), set()
        collect = doc["sections"][1]["paragraphs"]
        for paragraph in collect:
            for sentence in _sentences(paragraph, policy.language):
                found = {owner[m] for m in pattern.findall(sentence)}
                if any(trap in sentence for trap in traps[policy.language]):
                    assert found == {"phone_number"}, sentence
                    affirmed |= found
                elif sentence in keep:
                    assert len(found) == 1, sentence
                    denied |= found
                else:
                    affirmed |= found
        assert affirmed == set(policy.declared), policy.path
        assert denied == set(policy.negated), policy.path
        assert policy.sms_trap == any(trap in "".join(collect) for trap in traps[policy.language])


def test_policy_boilerplate_has_no_data_type_terms(market: Market) -> None:
    policies = list({a.policy.path: a.policy for a in market if a.policy.has_text}.values())
    assert {(p.language, p.shared) for p in policies} == {("zh", True), ("zh", False), ("en", True), ("en", False)}
    for policy in policies:
        doc = policy_document(market.seed, policy)
        boilerplate = [doc["title"], doc["effective"], doc["updated"], doc["footer"], *doc["nav"],
                       doc["sections"][1]["paragraphs"][0]]
        boilerplate += [s["heading"] or "" for s in doc["sections"]]
        boilerplate += [p for i, s in enumerate(doc["sections"]) if i != 1 for p in s["paragraphs"]]
        for text in boilerplate:
            assert not [t for t in ALL_TERMS if t.lower() in text.lower()], text
    assert "生效日期：" in TEMPLATES["zh"]["effective"]


def test_100k_population_builds() -> None:
    market = Market(apps=100_000, seed=7)
    cards = market.cards()
    apps = market.apps()
    assert len(cards) == len(apps) == 100_000
    assert len({a.key for a in apps}) == 100_000
    assert expected(apps[-1]) == market.app_truth(apps[-1])["expected"]


def test_simulated_sdks_are_what_the_analyzers_detect_and_name():
    """The simulator's SDK table (classes, policy names, data collected, advertising) matches the analyzers'."""
    from analyzers.sdks import detect_sdks, sdk_catalog
    from finmon.settings import FINMON_MIN_TARGET_SDK
    from market.population import SDKS

    catalog = sdk_catalog()
    for sdk in SDKS["sdks"]:
        assert [s["id"] for s in detect_sdks(sdk["classes"])] == [sdk["id"]]
        known = catalog.sdks[sdk["id"]]
        assert sorted(known.collects) == sorted(sdk["collects"]) and known.advertising == sdk["advertising"]
        for lang in ("zh", "en"):
            assert catalog.named_in(sdk["id"], sdk["policy_name"][lang]), (sdk["id"], lang)
            others = [o["id"] for o in SDKS["sdks"] if o["id"] != sdk["id"]]
            assert not [o for o in others if catalog.named_in(o, sdk["policy_name"][lang])]
    assert SDKS["min_target_sdk"] == FINMON_MIN_TARGET_SDK


def test_apk_specs_build_for_every_android_app():
    from analyzers.apk import inspect_apk
    from market.apk import build_apk
    from market.population import apk_spec, expected

    market = Market(apps=120, seed=5)
    for app in market.apps():
        if app.platform != "android":
            assert app.apk is None
            continue
        info = inspect_apk(build_apk(apk_spec(app)))
        assert info.package == app.package and info.version == app.version and info.label == app.name
        assert set(info.permissions) == set(app.permissions)
        assert sorted(s["id"] for s in info.sdks) == sorted(app.apk.sdks)
        exp = expected(app)
        if app.apk.invalid:  # served truncated: no APK findings are expected
            assert not set(exp) & set(APK_RULE_IDS)
            continue
        assert [f"receiver:{c['name']}" for c in info.exported_unprotected] == exp.get("V504", [])
        assert info.debuggable == ("V501" in exp) and info.allow_backup == ("V502" in exp)
        assert bool(info.uses_cleartext_traffic) == ("V503" in exp)


def test_some_android_apps_are_listed_under_another_legal_entity_in_one_store(truth: dict) -> None:
    """R603's truth: the conflicting store lists another company; every other store the developer itself."""
    conflicts = [a for a in truth["app_list"] if "R603" in a["expected"]]
    assert conflicts and all(a["platform"] == "android" and len(a["stores"]) > 1 for a in conflicts)
    for a in truth["app_list"]:
        owners = set(a["legal_entities"].values())
        assert a["developer"] in owners
        assert (len(owners) > 1) == ("R603" in a["expected"]), a["key"]


def test_ios_listings_show_a_short_name_and_the_legal_entity_as_seller():
    market = Market(apps=80, seed=3)
    ios = next(app for app in market.apps() if app.platform == "ios")
    assert ios.developer_display and ios.developer_display in ios.developer and ios.developer_display != ios.developer
    assert ios.legal_entity("itunes") == ios.developer
