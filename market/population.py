"""Deterministic synthetic population of Chinese finance apps and its ground truth.

Apps come in blocks of a few consecutive indices (``block_size`` in ``data/population.json``);
a block is split into developers, and each app is drawn from ``random.Random`` seeded with
(seed, index), so any app is cheap to generate and app *i* is the same whatever the size of
the population. The truth (:meth:`Market.truth`) is computed from the generative parameters by
:func:`expected`, the simulator's own reading of the rule semantics in ``data/rules.json``.

``Market(apps, seed, week=w)`` is the market ``w`` weeks later (``data/weeks.json``): each week
some apps are removed, new ones (the next indices) appear, some policies change their text and
some Android apps request one more permission, each drawn from a generator seeded with
(seed, week, app index or policy path), so week ``w`` is the cumulative result of weeks 1..w.
"""
from __future__ import annotations

import gc
import json
import random
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import date, timedelta
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

DATA_DIR = Path(__file__).with_name("data")


def load_data(name: str) -> dict[str, Any]:
    """One of the JSON tables in ``market/data``."""
    return json.loads((DATA_DIR / f"{name}.json").read_text("utf-8"))


RULES = load_data("rules")
TERMS = load_data("terms")
LABELS = load_data("labels")
GEN = load_data("population")
TEMPLATES = load_data("policy_templates")
SDKS = load_data("sdks")
WEEKS = load_data("weeks")

PREFIX = RULES["permission_prefix"]
PERMISSION_TYPES: dict[str, str | None] = {**RULES["dangerous_permissions"], **RULES["normal_permissions"]}
TEXT_VARIANTS = ("html", "gbk", "pdf")  # variants whose URL serves a policy text
EXTENSIONS = {"html": "html", "gbk": "htm", "pdf": "pdf", "missing": "html"}
ANDROID_STORES = ("appgallery", "xiaomi")  # drawn together (population.json android_stores)
MORE_ANDROID_STORES = ("googleplay", "myapp")  # each drawn on its own (more_android_stores)
POLICY_FAULT = "policy_500"
DATA_FAULTS = tuple(GEN["faults"]["data"])  # "<store>_<what>": broken store data, see Market.data_fault


class _Weights:
    """A weighted choice drawn with one ``rng.random()`` (``rng.choices`` is slow at 100k apps)."""

    __slots__ = ("keys", "cum")

    def __init__(self, weights: dict[str, float]) -> None:
        self.keys = list(weights)
        total, self.cum = 0.0, []
        for value in weights.values():
            total += value
            self.cum.append(total)
        self.cum = [c / total for c in self.cum]
        self.cum[-1] = 2.0  # random() < 1: never past the last key, whatever the rounding

    def pick(self, rng: random.Random) -> str:
        return self.keys[bisect_right(self.cum, rng.random())]


def _choice(rng: random.Random, seq: list | tuple):
    return seq[int(rng.random() * len(seq))]


def _sample(rng: random.Random, seq: list | tuple, k: int) -> list:
    pool = list(seq)
    k = min(k, len(pool))
    for j in range(k):
        m = j + int(rng.random() * (len(pool) - j))
        pool[j], pool[m] = pool[m], pool[j]
    return pool[:k]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


_DAY0 = date(2016, 1, 1)
_DAYS = [(_DAY0 + timedelta(days=n)).isoformat() for n in range(3700)]  # ISO dates from 2016-01-01
_OFFSET_2022 = (date(2022, 1, 1) - _DAY0).days
_OFFSET_2023 = (date(2023, 1, 1) - _DAY0).days
_W = {
    "developer_sizes": _Weights(GEN["developer_sizes"]),
    "finance_type": _Weights(GEN["finance_type_weights"]),
    "android_stores": _Weights(GEN["android_stores"]),
    "policy_variants": _Weights(GEN["policy_variants"]),
    "policy_language": _Weights(GEN["policy_language"]),
}
_CUES = {t: _Weights(cues) for t, cues in GEN["name_cues"].items()}
_P101_TYPES = frozenset(RULES["P101"]["finance_types"])
_P101_FORBIDDEN = frozenset(RULES["P101"]["forbidden_permissions"])
_P102_TYPES = frozenset(RULES["P102"]["never_necessary_types"])
_C202_TYPES = frozenset(RULES["C202"]["checked_types"])
_SCOPES = {t: frozenset(scope) for t, scope in RULES["necessary_scope"].items()}
_DANGEROUS: dict[str, str] = RULES["dangerous_permissions"]
_DATA_SAFETY: dict[str, list[str]] = RULES["data_safety"]["types"]
_DEVICE_TYPES = frozenset(TEMPLATES["device_types"])
_SDKS: dict[str, dict[str, Any]] = {s["id"]: s for s in SDKS["sdks"]}
_MANIFEST = SDKS["manifest"]
_TARGET_SDK = _Weights(_MANIFEST["target_sdk"])
CLEARTEXT_DEFAULT_OFF = 28  # Android allows cleartext by default below this targetSdk
_WEEK0 = date.fromisoformat(WEEKS["start"])
_NEW_TYPES = list(dict.fromkeys([*GEN["declared"]["extras"], *GEN["declared"]["excess_types"]]))  # a policy may add


def week_date(week: int) -> str:
    """The ISO date of week ``week`` (week 0: the population as first drawn)."""
    return (_WEEK0 + timedelta(weeks=week)).isoformat()


def _permission_table(dangerous: dict[str, float]) -> list[tuple[str, float]]:
    table = GEN["permissions"]
    shares = {**{p: 1.0 for p in table["always"]}, **table["normal"], **dangerous}
    return sorted(shares.items())


_BASE_NEEDS = {t: frozenset(RULES["necessary_scope"].get(t) or GEN["declared"]["base"][t])
               for t in GEN["finance_type_weights"]}
_EXTRA_NEEDS = list(GEN["declared"]["extras"].items())
_FULL_NAMES = {p: PREFIX + p for p in PERMISSION_TYPES}
_PERMISSION_TABLES = {
    "minimal": _permission_table(GEN["permissions"]["minimal"]),
    **{t: _permission_table(GEN["permissions"]["dangerous"].get(t, GEN["permissions"]["dangerous"]["_default"]))
       for t in GEN["finance_type_weights"]},
}


@dataclass(frozen=True, slots=True)
class Policy:
    """One privacy policy (possibly shared by several apps of a developer)."""

    path: str | None  # "/policies/<developer-slug>/<file>", None when the apps name no policy
    variant: str  # html | gbk | pdf | missing | none
    language: str  # zh | en
    declared: tuple[str, ...]  # data types some sentence mentions affirmatively
    negated: tuple[str, ...]  # data types only mentioned in negated sentences
    subject: str  # what the title names: the app, or the developer for a shared policy
    developer: str
    slug: str
    finance_type: str
    sms_trap: bool  # carries the "SMS verification code" sentence
    effective: str  # ISO date stated in the text
    fault: bool  # the URL answers 500 always
    shared: bool
    sdks: tuple[str, ...] = ()  # ids of the SDKs its third-party SDK list names
    revisions: tuple[int, ...] = ()  # weeks in which its text changed

    @property
    def has_text(self) -> bool:
        return self.variant in TEXT_VARIANTS


@dataclass(frozen=True, slots=True)
class Apk:
    """What an Android app's APK holds, as drawn: the simulator builds the file from it (see :func:`apk_spec`)."""

    sdks: tuple[str, ...]  # ids of data/sdks.json
    target_sdk: int
    debuggable: bool | None  # None: attribute absent
    allow_backup: bool | None
    cleartext: bool | None
    exported_unprotected: tuple[str, ...]  # receiver class names exported with no permission
    invalid: bool  # served truncated: the crawler must record it and lose nothing else

    @property
    def cleartext_allowed(self) -> bool:
        return self.cleartext if self.cleartext is not None else self.target_sdk < CLEARTEXT_DEFAULT_OFF


@dataclass(slots=True, eq=False)
class Card:
    """What a store's search list needs of an app: cheap to generate for every app at startup."""

    index: int
    platform: str  # android | ios
    package: str  # Android package name / iOS bundle id
    name: str
    finance_type: str
    stores: tuple[str, ...]
    description: str
    twin_of: int | None  # index of the Android app this iOS app is the twin of

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.package}"


def _from_card(field: str) -> property:
    return property(lambda self: getattr(self.card, field), doc=f"The card's ``{field}``.")


@dataclass(slots=True, eq=False)
class App:
    """One app as the stores list it, with what the simulator knows about it. Treat as read-only."""

    card: Card
    developer: str
    developer_slug: str
    permissions: tuple[str, ...]  # full Android permission names, sorted (empty for iOS)
    policy: Policy
    faults: tuple[str, ...]
    version: str
    updated: str  # YYYY-MM-DD
    released: str  # YYYY-MM-DD
    downloads: int
    rating: float
    rating_count: int
    size_bytes: int
    artist_id: int
    apk: Apk | None  # Android apps only
    changes: tuple[int, ...] = ()  # weeks in which it requested one more permission (new version)
    developer_display: str = ""  # the short name a store shows beside the legal entity (``developer``)
    owner_conflict: tuple[str, str] | None = None  # (store, another legal entity that store lists the app under)
    data_safety: tuple[str, ...] = ()  # the data types its Google Play Data safety form declares (none: "no data")

    index = _from_card("index")
    platform = _from_card("platform")
    package = _from_card("package")
    name = _from_card("name")
    finance_type = _from_card("finance_type")
    stores = _from_card("stores")
    description = _from_card("description")
    twin_of = _from_card("twin_of")
    key = _from_card("key")

    @property
    def track_id(self) -> int:
        return 1_400_000_000 + self.card.index

    @property
    def appgallery_id(self) -> str:
        return f"C{1_000_000 + self.card.index}"

    def legal_entity(self, store: str) -> str:
        """The legal entity ``store`` lists the app under: the developer, unless that store has it under another."""
        if self.owner_conflict is not None and self.owner_conflict[0] == store:
            return self.owner_conflict[1]
        return self.developer

    def category(self, store: str) -> str:
        return category_of(self.card, store)

    def privacy_labels(self) -> list[str]:
        """iOS privacy-label categories for the data types the policy declares."""
        labels = LABELS["privacy_labels"]
        return list(dict.fromkeys(labels[t] for t in self.policy.declared if t in labels))


def _permission_types(app: App) -> set[str]:
    """The data types the app's dangerous permissions reach."""
    return {_DANGEROUS[p.removeprefix(PREFIX)] for p in app.permissions if p.removeprefix(PREFIX) in _DANGEROUS}


def category_of(card: Card, store: str) -> str:
    """The category ``store`` files an app under (by its finance type)."""
    table = GEN["categories"][store]
    return table.get(card.finance_type, table["_default"])


def expected(app: App) -> dict[str, list[str]]:
    """Rule id → evidence keys that must fire for ``app`` (rules v1, from generative parameters)."""
    out: dict[str, list[str]] = {}
    short = [p.removeprefix(PREFIX) for p in app.permissions]
    if app.platform == "android":
        p101 = {p for p in short if p in _P101_FORBIDDEN} if app.finance_type in _P101_TYPES else set()
        p102 = {p for p in short if _DANGEROUS.get(p) in _P102_TYPES and p not in p101}
        out["P101"] = sorted(PREFIX + p for p in p101)
        out["P102"] = sorted(PREFIX + p for p in p102)
    policy = app.policy
    if not policy.has_text:
        out["C201"] = [RULES["C201"]["evidence_key"]]
    else:
        declared = set(policy.declared)
        scope = _SCOPES.get(app.finance_type)
        if scope is not None:
            out["C202"] = sorted((declared & _C202_TYPES) - scope)
        if app.platform == "android":
            out["D301"] = sorted({_DANGEROUS[p] for p in short if p in _DANGEROUS} - declared)
    if app.owner_conflict is not None:
        out["R603"] = ["legal_entity"]
    if "googleplay" in app.stores:
        pairs = {tuple(pair) for t, pair in _DATA_SAFETY.items() if t in app.data_safety}
        undeclared = {t for t in _DATA_SAFETY if tuple(_DATA_SAFETY[t]) not in pairs}
        out["D304"] = sorted(_permission_types(app) & undeclared)
        if policy.has_text:
            out["D305"] = sorted(set(policy.declared) & undeclared)
    apk = app.apk
    if apk is not None and not apk.invalid:  # evidence keys as the analyzers' S4xx, D303 and V5xx rules give them
        out["S402"] = sorted(s for s in apk.sdks if _SDKS[s]["advertising"])
        out["V501"] = ["debuggable"] if apk.debuggable else []
        out["V502"] = ["allowBackup"] if apk.allow_backup is not False else []
        out["V503"] = ["usesCleartextTraffic"] if apk.cleartext_allowed else []
        out["V504"] = sorted(f"receiver:{name}" for name in apk.exported_unprotected)
        out["V505"] = ["targetSdkVersion"] if apk.target_sdk < SDKS["min_target_sdk"] else []
        if policy.has_text:
            out["S401"] = sorted(set(apk.sdks) - set(policy.sdks))
            out["D303"] = sorted({t for s in apk.sdks for t in _SDKS[s]["collects"]} - set(policy.declared))
    return {rule: keys for rule, keys in out.items() if keys}


@dataclass(slots=True)
class _Developer:
    """One developer of a block during generation."""

    brand: str
    slug: str  # in policy URLs: "<pinyin>-<first app index in base 36>"
    package_prefix: str
    cards: list[Card]


@dataclass(slots=True)
class _Needs:
    """What one app requests and what its policy would say, before policies are shared."""

    permissions: tuple[str, ...]
    needs: set[str]
    negated: set[str]
    faults: tuple[str, ...]
    apk: Apk | None = None
    named_sdks: frozenset[str] = frozenset()  # the SDKs its policy names


class Market:
    """The population for (apps, seed).

    Generation is lazy and in two stages, both by block of ``block_size`` apps: :meth:`card`
    (name, stores, description: what search needs) draws from the block's generator, seeded
    with (seed, block); ``market[i]`` (the whole :class:`App`) replays the card stage, then draws
    app *i*'s permissions, policy and listing details from a generator seeded with (seed, i).

    In week ``week`` the market lists the indices below :attr:`size` that :meth:`present` accepts
    (week 0: all ``apps`` of them); ``market[i]`` and :meth:`card` also give removed apps.
    """

    def __init__(self, apps: int, seed: int, week: int = 0, base_url: str = "", fault_rate: float | None = None) -> None:
        if apps < 0 or week < 0:
            raise ValueError("apps and week must be >= 0")
        self.fault_rate = GEN["faults"]["data_rate"] if fault_rate is None else fault_rate  # share with a data fault
        if not 0 <= self.fault_rate <= 1:
            raise ValueError("fault_rate must be between 0 and 1")
        self.initial_apps = apps  # listed in week 0
        self.seed = seed
        self.week = week
        self.base_url = base_url.rstrip("/")  # prefix of policy URLs in truth(); the server sets it
        self._block_size = int(GEN["block_size"])
        self._sizes, self._removed, self._permission_changes = _evolve(apps, seed, week)
        self.size = self._sizes[-1]  # indices drawn so far: the week-0 apps and every new one since
        self._cards: list[Card | None] = [None] * self.size
        self._apps: list[App | None] = [None] * self.size

    # --- access -------------------------------------------------------------
    def __len__(self) -> int:
        return self.size - len(self._removed)

    def present(self, i: int) -> bool:
        """Whether app ``i`` is listed this week."""
        return 0 <= i < self.size and i not in self._removed

    def introduced(self, i: int) -> int:
        """The week app ``i`` first appeared in (0 for the initial apps)."""
        return bisect_right(self._sizes, i)

    def removed(self) -> list[str]:
        """Keys of the apps listed last week but not this week."""
        return [self.card(i).key for i, week in sorted(self._removed.items()) if week == self.week]

    def changed(self, app: App) -> list[str]:
        """What changed for ``app`` since last week, among "new", "policy" and "permissions"."""
        if not self.week:
            return []
        if self.introduced(app.index) == self.week:
            return ["new"]
        return [what for what, weeks in (("policy", app.policy.revisions), ("permissions", app.changes))
                if weeks[-1:] == (self.week,)]

    def card(self, i: int) -> Card:
        """The search-list view of app ``i``."""
        card = self._cards[self._check(i)]
        if card is None:
            self._store(self._cards, [c for dev in self._block_cards(i // self._block_size)[1] for c in dev.cards])
            card = self._cards[i]
        return card  # type: ignore[return-value]

    def __getitem__(self, i: int) -> App:
        app = self._apps[self._check(i)]
        if app is None:
            self._store(self._apps, self._block(i // self._block_size))
            app = self._apps[i]
        return app  # type: ignore[return-value]

    def __iter__(self) -> Iterator[App]:
        return (self[i] for i in range(self.size) if i not in self._removed)

    def cards(self) -> list[Card]:
        """Every listed app's card (the cheap stage; the cyclic GC is paused, it only slows this down)."""
        with _gc_paused():
            return [self.card(i) for i in range(self.size) if i not in self._removed]

    def apps(self) -> list[App]:
        """Every listed app, generated in full."""
        with _gc_paused():
            return list(self)

    def policies(self) -> dict[str, Policy]:
        """Policy path → policy, for every policy some app names."""
        return {app.policy.path: app.policy for app in self.apps() if app.policy.path}

    def developer_apps(self, slug: str) -> list[App]:
        """The listed apps of the developer whose policy-URL slug is ``slug`` (empty when there is none)."""
        try:
            first = int(slug.rsplit("-", 1)[1], 36)
        except (IndexError, ValueError):
            return []
        out = []
        for i in range(first, min(first + self._block_size, self.size)):
            app = self[i]
            if app.developer_slug != slug:
                break
            if self.present(i):
                out.append(app)
        return out

    def find_policy(self, path: str) -> Policy | None:
        """The policy served at ``path`` ("/policies/<slug>/<file>"), generating only its block."""
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "policies":
            return None
        return next((a.policy for a in self.developer_apps(parts[2]) if a.policy.path == path), None)

    def policy_url(self, policy: Policy) -> str | None:
        return self.base_url + policy.path if policy.path else None

    def policy_document(self, policy: Policy) -> dict[str, Any]:
        """The policy's page as structured text: title, dates, nav, sections, footer."""
        return policy_document(self.seed, policy)

    # --- truth --------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        """The ground truth: every listed app, its generative parameters and the rule ids that must fire.

        Policy URLs are ``base_url`` + path (just the path while ``base_url`` is empty). From week 1
        on it also gives the ``week``, the keys of the apps ``removed`` since last week and, per app,
        what ``changed`` (see :meth:`changed`); week 0's truth is the population as first drawn.
        """
        apps = self.apps()
        with _gc_paused():
            app_list = [self.app_truth(app) for app in apps]
        if not self.week:
            return {"apps": len(apps), "seed": self.seed, "app_list": app_list}
        return {"apps": len(apps), "seed": self.seed, "week": self.week, "removed": self.removed(),
                "app_list": app_list}

    def app_truth(self, app: App) -> dict[str, Any]:
        policy = app.policy
        ids = {"itunes": app.track_id, "appgallery": app.appgallery_id, "xiaomi": app.package, "googleplay": app.package,
               "myapp": app.package}
        changed = {"changed": self.changed(app)} if self.week else {}
        return {
            "key": app.key,
            "package": app.package,
            "name": app.name,
            "developer": app.developer,
            "legal_entities": {store: app.legal_entity(store) for store in app.stores},
            "finance_type": app.finance_type,
            "platform": app.platform,
            "stores": list(app.stores),
            "store_ids": {store: ids[store] for store in app.stores},
            "permissions": list(app.permissions),
            "policy": {
                "url": self.policy_url(policy),
                "variant": policy.variant,
                "language": policy.language,
                "declared": list(policy.declared),
                "negated": list(policy.negated),
                "shared": policy.shared,
                "effective_date": policy.effective if policy.has_text else None,
            },
            "faults": list(app.faults),
            "apk": None if app.apk is None else {
                "path": apk_path(app), "sdks": list(app.apk.sdks), "target_sdk": app.apk.target_sdk,
                "invalid": app.apk.invalid},
            "expected": expected(app),
            **changed,
        }

    # --- generation: helpers ------------------------------------------------
    def _check(self, i: int) -> int:
        if not 0 <= i < self.size:
            raise IndexError(i)
        return i

    def _store(self, cache: list, items: list[Card] | list[App]) -> None:
        for item in items:
            if item.index < self.size:
                cache[item.index] = item

    # --- generation: stage 1, cards -----------------------------------------
    def _block_cards(self, block: int) -> tuple[random.Random, list[_Developer]]:
        """Split a block into developers and draw their cards; the block's generator is left ready for stage 2."""
        rng = random.Random(f"{self.seed}:block:{block}")
        start, end = block * self._block_size, (block + 1) * self._block_size
        developers = []
        while start < end:
            size = min(int(_W["developer_sizes"].pick(rng)), end - start)
            parts = [_choice(rng, GEN["brand_first"]), _choice(rng, GEN["brand_second"])]
            if rng.random() < GEN["brand_third_share"]:
                parts.append(_choice(rng, GEN["brand_third"]))
            pinyin, number = "".join(p[1] for p in parts), _base36(start)
            dev = _Developer("".join(p[0] for p in parts), f"{pinyin}-{number}", f"{pinyin}{number}", [])
            words: dict[str, int] = {}
            for i in range(start, start + size):
                dev.cards.append(self._more_stores(self._card(rng, i, dev, words)))
            developers.append(dev)
            start += size
        return rng, developers

    @staticmethod
    def _card(rng: random.Random, i: int, dev: _Developer, words: dict[str, int]) -> Card:
        r = rng.random
        if dev.cards:
            source = dev.cards[-1]
            if source.platform == "android" and r() < GEN["platform"]["twin_of_previous"]:
                return Card(i, "ios", source.package, source.name, source.finance_type, ("itunes",),
                            source.description, source.index)
        if dev.cards and r() < GEN["same_type_in_developer"]:
            finance_type = dev.cards[0].finance_type
        else:
            finance_type = _W["finance_type"].pick(rng)
        name = dev.brand + _CUES[finance_type].pick(rng)
        if r() < GEN["platform"]["ios_only"]:
            platform, stores = "ios", ("itunes",)
        else:
            where = _W["android_stores"].pick(rng)
            platform, stores = "android", ANDROID_STORES if where == "both" else (where,)
        word = GEN["package_words"][finance_type]
        n = words[word] = words.get(word, 0) + 1
        extras = GEN["description_extras"]
        k = 1 + int(r() * 3)
        start = int(r() * (len(extras) - k + 1))
        description = _choice(rng, GEN["descriptions"][finance_type]).format(name=name)
        description += "".join(extras[start:start + k])
        package = f"com.{dev.package_prefix}.{word}{n if n > 1 else ''}"
        return Card(i, platform, package, name, finance_type, stores, description, None)

    def _more_stores(self, card: Card) -> Card:
        """An Android card also listed in the stores of MORE_ANDROID_STORES, each at its share, drawn from (seed,
        app index) alone, so the rest of the population does not depend on them."""
        if card.platform != "android":
            return card
        rng = random.Random(f"{self.seed}:more-stores:{card.index}")
        more = tuple(store for store in MORE_ANDROID_STORES if rng.random() < GEN["more_android_stores"][store])
        return replace(card, stores=card.stores + more) if more else card

    # --- generation: stage 2, apps ------------------------------------------
    def _block(self, block: int) -> list[App]:
        rng, developers = self._block_cards(block)
        return [app for dev in developers for app in self._developer(rng, dev)]

    def _developer(self, rng: random.Random, dev: _Developer) -> list[App]:
        needs: dict[int, _Needs] = {}
        rngs = [random.Random(f"{self.seed}:app:{card.index}") for card in dev.cards]
        for card, app_rng in zip(dev.cards, rngs):
            if card.twin_of is None:
                needs[card.index] = self._needs(app_rng, card)
                if card.platform == "android":  # own generator: the rest of the app is drawn as before APKs
                    self._add_apk(random.Random(f"{self.seed}:apk:{card.index}"), card, needs[card.index])
            else:
                source = needs[card.twin_of]
                needs[card.index] = _Needs((), source.needs, source.negated, (), named_sdks=source.named_sdks)
        types = {c.finance_type for c in dev.cards}
        industries = GEN["developer_industry"]
        industry = _choice(rng, industries[next(iter(types))] if len(types) == 1 else industries["_mixed"])
        suffix = GEN["developer_suffix"].get(industry, GEN["developer_suffix"]["_default"])
        city = _choice(rng, GEN["cities"])
        developer = f"{city}{dev.brand}{industry}{suffix}"
        policies = self._policies(rng, dev, needs, developer)
        if self.week:
            evolved = {id(p): self._evolve_policy(p) for p in policies.values()}
            policies = {i: evolved[id(p)] for i, p in policies.items()}
        artist_id = 1_300_000_000 + dev.cards[0].index
        apps = (self._evolve_app(self._app(card, app_rng, developer, dev.slug, needs[card.index], policies[card.index],
                                           artist_id)) for card, app_rng in zip(dev.cards, rngs))
        return [self._data_safety(self._owner_conflict(self._data_fault(
            replace(app, developer_display=f"{dev.brand}{industry}")), city, dev.brand)) for app in apps]

    def _data_safety(self, app: App) -> App:
        """The data types an app on Google Play declares in its Data safety form: what its permissions reach and
        its policy declares (of the types the form has), except that at ``none_share`` it declares no data at all
        and at ``omit_share`` it leaves one type out. Drawn from (seed, app index) alone."""
        if "googleplay" not in app.stores:
            return app
        rng = random.Random(f"{self.seed}:data-safety:{app.index}")
        table = RULES["data_safety"]
        covered = sorted((_permission_types(app) | (set(app.policy.declared) if app.policy.has_text else set()))
                         & set(table["types"]))
        x = rng.random()
        if x < table["none_share"]:
            covered = []
        elif x < table["none_share"] + table["omit_share"] and covered:
            del covered[int(rng.random() * len(covered))]
        return replace(app, data_safety=tuple(covered))

    def _owner_conflict(self, app: App, city: str, brand: str) -> App:
        """An Android app in two or more stores is, at ``owner_conflict_rate``, listed by its last store under another
        legal entity (same brand, another city and trade: a reseller's or a counterfeiter's company). Drawn from
        (seed, app index) alone, so the rest of the population does not depend on it."""
        rng = random.Random(f"{self.seed}:owner:{app.index}")
        if app.platform != "android" or len(app.stores) < 2 or rng.random() >= GEN["owner_conflict_rate"]:
            return app
        other_city = _choice(rng, [c for c in GEN["cities"] if c != city])
        return replace(app, owner_conflict=(app.stores[-1], f"{other_city}{brand}{GEN['owner_conflict_trade']}有限公司"))

    def _data_fault(self, app: App) -> App:
        """The app with one of DATA_FAULTS added at ``fault_rate``, drawn from (seed, app index) alone (so the
        rest of the population is the same whatever the rate); only faults of a store that lists the app."""
        kinds = [k for k in DATA_FAULTS if k.split("_", 1)[0] in app.stores]
        rng = random.Random(f"{self.seed}:data-fault:{app.index}")
        if not kinds or rng.random() >= self.fault_rate:
            return app
        return replace(app, faults=app.faults + (_choice(rng, kinds),))

    def wrong_typed_field(self, app: App, store: str) -> tuple[str, Any]:
        """(field, value) served with the wrong type in ``store``'s data of an app with ``<store>_wrong_type``."""
        fields = sorted(GEN["faults"]["wrong_type_fields"][store].items())
        return _choice(random.Random(f"{self.seed}:wrong-type:{store}:{app.index}"), fields)

    def _evolve_policy(self, policy: Policy) -> Policy:
        """The policy after weeks 1..week: now and then its text declares one more data type, or one fewer."""
        for week in range(1, self.week + 1) if policy.has_text else ():
            rng = random.Random(f"{self.seed}:week:{week}:{policy.path}")
            if rng.random() >= WEEKS["policy_changed"]:
                continue
            declared = set(policy.declared)
            more = [t for t in _NEW_TYPES if t not in declared]
            if more and (not declared or rng.random() < WEEKS["policy_adds"]):
                declared.add(_choice(rng, more))
            elif declared:
                declared.discard(_choice(rng, policy.declared))
            policy = replace(policy, declared=tuple(sorted(declared)),
                             negated=tuple(t for t in policy.negated if t not in declared),
                             sms_trap=policy.sms_trap and "phone_number" in declared,
                             effective=week_date(week), revisions=policy.revisions + (week,))
        return policy

    def _evolve_app(self, app: App) -> App:
        """The app after weeks 1..week: an Android app may request one more dangerous permission (new version)."""
        if app.platform != "android" or app.index not in self._permission_changes:
            return app
        table = GEN["permissions"]["dangerous"]
        candidates = sorted(table.get(app.finance_type, table["_default"]))
        for week, x in self._permission_changes.get(app.index, ()):
            more = [PREFIX + p for p in candidates if PREFIX + p not in app.permissions]
            if more:
                major, minor, _ = app.version.split(".")
                app = replace(app, permissions=tuple(sorted(app.permissions + (more[int(x * len(more))],))),
                              version=f"{major}.{int(minor) + 1}.0", updated=week_date(week),
                              changes=app.changes + (week,))
        return app

    @staticmethod
    def _needs(rng: random.Random, card: Card) -> _Needs:
        """Permissions, declared and denied data types, store faults of one (non-twin) app."""
        r = rng.random
        table = GEN["declared"]
        permissions = _PERMISSION_TABLES["minimal" if r() < GEN["permissions"]["minimal_share"]
                                          else card.finance_type]
        perms = [p for p, share in permissions if r() < share]
        needs = set(_BASE_NEEDS[card.finance_type])
        for dtype, share in _EXTRA_NEEDS:
            if r() < share:
                needs.add(dtype)
        if "QUERY_ALL_PACKAGES" in perms and r() < table["app_list_if_queried"]:
            needs.add("app_list")
        used = sorted({_DANGEROUS[p] for p in perms if p in _DANGEROUS})
        if used and r() < table["omit_share"]:  # the policy forgets one or two of them: D301
            del used[int(r() * len(used))]
            if used and r() < 0.5:
                del used[int(r() * len(used))]
        needs.update(used)
        if r() < table["excess_share"]:  # declares more than the app needs: C202
            needs.update(_sample(rng, table["excess_types"], 1 + int(r() * 2)))
        candidates = [t for t in table["negated_preferred"] if t not in needs]
        negated = set(_sample(rng, candidates, int(r() * (table["negated_max"] + 1))))
        faults: tuple[str, ...] = ()
        if set(ANDROID_STORES) <= set(card.stores):  # store faults only where the other store still lists the app
            x = r()
            for fault, share in GEN["faults"]["store"].items():
                if x < share:
                    faults = (fault,)
                    break
                x -= share
        full = tuple(_FULL_NAMES[p] for p in perms) if card.platform == "android" else ()
        return _Needs(full, needs, negated, faults)

    @staticmethod
    def _add_apk(rng: random.Random, card: Card, needs: _Needs) -> None:
        """Draw the app's APK; its policy names most of its SDKs and declares most of what they collect."""
        r = rng.random
        sdks = tuple(s["id"] for s in SDKS["sdks"] if r() < s["share"])
        named = set()
        for sdk_id in sdks:
            if r() < SDKS["policy_names_share"]:
                named.add(sdk_id)
            if r() < SDKS["policy_declares_data_share"]:
                needs.needs.update(_SDKS[sdk_id]["collects"])
        x = r()
        allow_backup = False if x < _MANIFEST["allow_backup_false"] else (True if x < 0.75 else None)
        x = r()
        cleartext = True if x < _MANIFEST["cleartext_explicit_true"] else (False if x < 0.4 else None)
        needs.apk = Apk(
            sdks=sdks, target_sdk=int(_TARGET_SDK.pick(rng)),
            debuggable=True if r() < _MANIFEST["debuggable"] else None,
            allow_backup=allow_backup, cleartext=cleartext,
            exported_unprotected=((f"{card.package}.push.MessageReceiver",)
                                  if r() < _MANIFEST["exported_unprotected"] else ()),
            invalid=r() < _MANIFEST["apk_invalid"],
        )
        needs.named_sdks = frozenset(named)

    def _policies(self, rng: random.Random, dev: _Developer, needs: dict[int, _Needs],
                  developer: str) -> dict[int, Policy]:
        owners = [c for c in dev.cards if c.twin_of is None]
        if len(owners) > 1 and rng.random() < GEN["shared_policy"]:
            groups = [owners]
        else:
            groups = [[c] for c in owners]
        out: dict[int, Policy] = {}
        for group in groups:
            policy = self._policy(rng, group, needs, developer, dev.slug)
            for c in group:
                out[c.index] = policy
        for c in dev.cards:
            if c.twin_of is not None:
                out[c.index] = out[c.twin_of]
        return out

    @staticmethod
    def _policy(rng: random.Random, group: list[Card], needs: dict[int, _Needs], developer: str,
                slug: str) -> Policy:
        variant = _W["policy_variants"].pick(rng)
        language = "zh" if variant == "gbk" else _W["policy_language"].pick(rng)
        first, shared = group[0], len(group) > 1
        stem = "privacy" if shared else first.package.rsplit(".", 1)[1] + "-privacy"
        has_text = variant in TEXT_VARIANTS
        declared: set[str] = set()
        negated: set[str] = set()
        sdks: set[str] = set()
        if has_text:  # a shared policy declares what any of its apps needs, and names their SDKs
            for c in group:
                declared |= needs[c.index].needs
                negated |= needs[c.index].negated
                sdks |= needs[c.index].named_sdks
        return Policy(
            path=None if variant == "none" else f"/policies/{slug}/{stem}.{EXTENSIONS[variant]}",
            variant=variant,
            language=language,
            declared=tuple(sorted(declared)),
            negated=tuple(sorted(negated - declared)),
            subject=developer if shared else first.name,
            developer=developer,
            slug=slug,
            finance_type=first.finance_type,
            sms_trap="phone_number" in declared and rng.random() < GEN["declared"]["sms_trap"],
            effective=_DAYS[_OFFSET_2022 + int(rng.random() * 1000)],
            fault=has_text and rng.random() < GEN["faults"][POLICY_FAULT],
            shared=shared,
            sdks=tuple(sorted(sdks)),
        )

    @staticmethod
    def _app(card: Card, rng: random.Random, developer: str, slug: str, needs: _Needs, policy: Policy,
             artist_id: int) -> App:
        r = rng.random
        released = int(r() * 2500)
        updated = max(released, _OFFSET_2023 + int(r() * 670))
        return App(
            card, developer, slug, needs.permissions, policy,
            needs.faults + ((POLICY_FAULT,) if policy.fault else ()),
            f"{1 + int(r() * 9)}.{int(r() * 21)}.{int(r() * 10)}",
            _DAYS[updated],
            _DAYS[released],
            int(10 ** (3 + r() * 5.5)),
            round(2.5 + r() * 2.45, 5),
            int(10 ** (1 + r() * 5)),
            20_000_000 + int(r() * 280_000_000),
            artist_id,
            needs.apk,
        )


def _evolve(apps: int, seed: int, weeks: int) -> tuple[list[int], dict[int, int], dict[int, list[tuple[int, float]]]]:
    """The indices drawn by the end of each week 0..weeks, index → week it was removed, and index →
    (week, draw picking the permission) of its permission changes, each drawn per (seed, week, index)."""
    sizes, removed, changes = [apps], {}, {}
    new = max(1, round(apps * WEEKS["new"]))
    for week in range(1, weeks + 1):
        for i in range(sizes[-1]):
            if i in removed:
                continue
            r = random.Random(f"{seed}:week:{week}:{i}").random
            if r() < WEEKS["removed"]:
                removed[i] = week
            elif r() < WEEKS["permissions_changed"]:
                changes.setdefault(i, []).append((week, r()))
        sizes.append(sizes[-1] + new)
    return sizes, removed, changes


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _join_terms(items: list[str], lang: str) -> str:
    t = TEMPLATES[lang]
    if len(items) == 1:
        return items[0]
    return t["list_sep"].join(items[:-1]) + t["list_last"] + items[-1]


def _date_text(t: dict[str, Any], key: str, day: date) -> str:
    month_name = t["months"][day.month - 1] if "months" in t else ""
    return t[key].format(year=day.year, month=day.month, day=day.day, month_name=month_name)


@lru_cache(maxsize=4096)
def policy_document(seed: int, policy: Policy) -> dict[str, Any]:
    """The policy's text, structured: title, dates, nav, sections (heading, paragraphs), footer,
    and the sentences a renderer must not break across lines (``keep_together``).

    Drawn from a generator seeded with (seed, policy path). Callers must not modify the result.
    """
    rng = random.Random(f"{seed}:text:{policy.path}")
    lang = policy.language
    t = TEMPLATES[lang]
    terms = TERMS[lang]
    fill = {
        "subject": policy.subject,
        "developer": policy.developer,
        "slug": policy.slug,
        "service": t["services"][policy.finance_type],
    }
    sentences: list[str] = []
    for kind in ("info", "device"):  # personal information, then device resources: phrased differently
        declared = [d for d in policy.declared if (d in _DEVICE_TYPES) == (kind == "device")]
        rng.shuffle(declared)
        while declared:
            n = rng.randint(1, 3)
            group, declared = declared[:n], declared[n:]
            words = [rng.choice(terms[dtype]) for dtype in group]
            sentences.append(rng.choice(t["affirmative"][kind]).format(
                terms=_join_terms(words, lang), purpose=rng.choice(t["purposes"]),
                feature=rng.choice(t["features"]), **fill))
    rng.shuffle(sentences)
    keep_together = []  # sentences whose meaning a line break could change (negation, the SMS-code trap)
    if policy.sms_trap:
        phone = rng.choice(terms["phone_number"])
        keep_together.append(rng.choice(t["trap"]).format(phone=phone))
        sentences.insert(rng.randint(0, len(sentences)), keep_together[-1])
    for dtype in policy.negated:
        kind = "device" if dtype in _DEVICE_TYPES else "info"
        keep_together.append(rng.choice(t["negated"][kind]).format(term=rng.choice(terms[dtype])))
        sentences.insert(rng.randint(0, len(sentences)), keep_together[-1])
    paragraphs = [_fill_all(t["collect_intro"], fill, lang)]
    while sentences:
        n = rng.randint(1, 3)
        paragraphs.append(("" if lang == "zh" else " ").join(sentences[:n]))
        sentences = sentences[n:]
    effective = date.fromisoformat(policy.effective)
    updated = effective - timedelta(days=rng.randint(3, 30))
    sections = [{"heading": None, "paragraphs": [_fill_all(t["intro"], fill, lang)]},
                {"heading": t["headings"]["collect"], "paragraphs": paragraphs}]
    for name, lines in t["boilerplate"].items():
        kept = [line for line in lines if rng.random() < 0.85] or lines[:1]
        paragraphs = [_fill_all(kept, fill, lang)]
        if name == "share" and policy.sdks:
            names = [_SDKS[s]["policy_name"][lang] for s in policy.sdks]
            paragraphs.append(t["sdk_list"].format(sdks=_join_terms(names, lang)))
        sections.append({"heading": t["headings"][name], "paragraphs": paragraphs})
    icp = t["icp"].format(province=rng.choice(t["provinces"]), number=rng.randint(10_000_000, 99_999_999))
    return {
        "title": t["title"].format(**fill),
        "language": lang,
        "effective": _date_text(t, "effective", effective),
        "updated": _date_text(t, "updated", updated),
        "nav": list(t["nav"]),
        "sections": sections,
        "footer": t["footer"].format(year=effective.year, icp=icp, **fill),
        "keep_together": keep_together,
    }


def _fill_all(lines: list[str], fill: dict[str, str], lang: str) -> str:
    return ("" if lang == "zh" else " ").join(line.format(**fill) for line in lines)


def apk_path(app: App) -> str:
    """Where the simulator serves an Android app's APK."""
    return f"/apk/{app.package}.apk"


def apk_spec(app: App):
    """The :class:`market.apk.ApkSpec` of an Android app's APK: its permissions, flags, components and SDK classes."""
    from .apk import ApkSpec, Component

    apk = app.apk
    if apk is None:
        raise ValueError(f"{app.key} has no APK")
    main = Component("activity", ".MainActivity", exported=True, actions=("android.intent.action.MAIN",),
                     categories=("android.intent.category.LAUNCHER",))
    components = [main, Component("activity", ".LoanActivity"),
                  Component("service", ".SyncService", exported=True, permission=f"{app.package}.permission.SYNC")]
    components += [Component("receiver", name, exported=True, actions=(f"{app.package}.MESSAGE",))
                   for name in apk.exported_unprotected]
    own = (f"{app.package}.MainActivity", f"{app.package}.LoanActivity", f"{app.package}.SyncService")
    major, minor, patch = (int(x) for x in app.version.split("."))
    return ApkSpec(
        package=app.package, version_name=app.version, version_code=major * 10_000 + minor * 100 + patch,
        min_sdk=21, target_sdk=apk.target_sdk, label=app.name, permissions=app.permissions,
        debuggable=apk.debuggable, allow_backup=apk.allow_backup, uses_cleartext_traffic=apk.cleartext,
        components=tuple(components),
        classes=own + tuple(c for s in apk.sdks for c in _SDKS[s]["classes"]),
    )
