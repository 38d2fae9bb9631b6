"""Third-party SDKs and trackers found in an app's class names.

Two tables, both data: ``data/sdks.json`` (Chinese SDKs: push, analytics, ads, maps and location, payment,
social login, risk control, with the data each collects) and ``data/trackers_exodus.json`` (the εxodus
tracker signatures, ODbL: see ``data/TRACKERS-LICENSE.md``). A Chinese-table SDK matches when a class lies in
one of its packages; an εxodus tracker matches as εxodus matches it: its code signature (a regular
expression) is searched in each class name, dotted (``com.umeng.analytics.MobclickAgent``); signatures of
three characters or fewer are skipped, as εxodus skips them. An εxodus tracker that is the same SDK as a
matched table entry is reported once, under the entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

from .policy_text import load_json

__all__ = ["Sdk", "SdkCatalog", "detect_sdks", "sdk_catalog"]

# εxodus categories → our category names (the first one a tracker has decides)
EXODUS_CATEGORIES = {"Advertisement": "ads", "Analytics": "analytics", "Crash reporting": "crash_reporting",
                     "Location": "location", "Profiling": "profiling", "Identification": "identification"}
MIN_SIGNATURE = 4


@dataclass(frozen=True)
class Sdk:
    """One SDK or tracker the catalog knows."""

    id: str  # "jpush" for table entries, "exodus:343" for εxodus trackers
    name: str
    name_en: str
    category: str
    vendor: str
    names_in_policy: tuple[str, ...]  # any of these in the policy text names the SDK
    collects: tuple[str, ...]  # data type ids (table entries only)
    advertising: bool  # an advertising or profiling SDK


@dataclass(frozen=True)
class SdkCatalog:
    sdks: dict[str, Sdk]
    prefixes: dict[str, str]  # package prefix -> table SDK id
    signatures: tuple[tuple[str, re.Pattern], ...]  # (εxodus SDK id, compiled code signature)
    merged: dict[str, str]  # εxodus SDK id -> table SDK id it is reported under
    categories: dict[str, list[str]]  # category -> [zh, en]
    by_tracker_name: dict[str, str]  # an εxodus name no English word could be (see named_any) -> its SDK id
    tracker_words: int  # the most words such a name has

    def named_any(self, text: str, accept: Callable[[Sdk, int, int], bool] | None = None) -> str | None:
        """The first name of an SDK that ``text`` contains (a policy naming its SDKs), or None: any name of the
        Chinese table, and of the εxodus table the names no English word could be (DoubleClick, Google Analytics, JW
        Player: several words, or a capital or digit inside), as written and as whole words (Branch, Batch and Smart
        are trackers too). ``accept(sdk, start, end)``: whether an occurrence at [start, end) counts (default: every
        one)."""
        lowered = text.lower()
        for sdk in self.sdks.values():
            if sdk.id.startswith("exodus:"):
                continue
            for name in sdk.names_in_policy:
                haystack, needle = (lowered, name.lower()) if name.isascii() else (text, name)
                pos = haystack.find(needle)
                while pos >= 0:
                    if accept is None or accept(sdk, pos, pos + len(needle)):
                        return name
                    pos = haystack.find(needle, pos + 1)
        words = [(m.start(), m.end()) for m in _LATIN_WORD.finditer(text)]
        for i, (start, _) in enumerate(words):
            for _, end in words[i:i + self.tracker_words]:
                sdk_id = self.by_tracker_name.get(text[start:end])
                if sdk_id is not None and (accept is None or accept(self.sdks[sdk_id], start, end)):
                    return text[start:end]
        return None

    def named_in(self, sdk_id: str, text: str) -> str | None:
        """The first of the SDK's names that ``text`` contains (Latin names case-insensitively), or None."""
        lowered = None
        for name in self.sdks[sdk_id].names_in_policy:
            if name.isascii():
                lowered = text.lower() if lowered is None else lowered
                if name.lower() in lowered:
                    return name
            elif name in text:
                return name
        return None


@lru_cache(maxsize=1)
def sdk_catalog() -> SdkCatalog:
    """Both tables, loaded and compiled once."""
    table = load_json("sdks.json")
    ad_categories = set(table["exodus_ad_categories"])
    sdks: dict[str, Sdk] = {}
    prefixes: dict[str, str] = {}
    merged: dict[str, str] = {}
    for row in table["sdks"]:
        sdks[row["id"]] = Sdk(row["id"], row["name_zh"], row["name_en"], row["category"], row["vendor"],
                              tuple(row["names_in_policy"]), tuple(row["collects"]), row["category"] == "ads")
        for prefix in row["packages"]:
            prefixes[prefix] = row["id"]
        for exodus_id in row["exodus_ids"]:
            merged[f"exodus:{exodus_id}"] = row["id"]
    signatures = []
    for row in load_json("trackers_exodus.json"):
        sdk_id = f"exodus:{row['id']}"
        cats = row.get("categories") or []
        category = next((EXODUS_CATEGORIES[c] for c in cats if c in EXODUS_CATEGORIES), "tracker")
        sdks[sdk_id] = Sdk(sdk_id, row["name"], row["name"], category, "", _exodus_names(row["name"]), (),
                           bool(ad_categories & set(cats)))
        signature = row.get("code_signature") or ""
        if len(signature) >= MIN_SIGNATURE:
            signatures.append((sdk_id, re.compile(signature, re.MULTILINE)))
    by_tracker_name = {name: sdk.id for sdk in sdks.values() if sdk.id.startswith("exodus:")
                       for name in sdk.names_in_policy if _distinctive(name)}
    return SdkCatalog(sdks, prefixes, tuple(signatures), merged, table["categories"], by_tracker_name,
                      max(len(_LATIN_WORD.findall(name)) for name in by_tracker_name))


_LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'&.][A-Za-z0-9]+)*")  # a word of a tracker's name (AppsFlyer, S4M)


def _distinctive(name: str) -> bool:
    """A tracker's name that no English word could be: several words, or a capital or a digit after its first letter."""
    return " " in name or any(c.isdigit() or c.isupper() for c in name[1:])


def _exodus_names(name: str) -> tuple[str, ...]:
    """Names a policy may use for an εxodus tracker: the full name and its parts ("AutoNavi / Amap", "X (Y)")."""
    parts = [name] + [p.strip(" )") for p in re.split(r" / | \(", name)]
    if name.startswith("Google "):
        parts.append(name.removeprefix("Google "))
    return tuple(dict.fromkeys(p for p in parts if len(p) >= 3))


def detect_sdks(class_names: Iterable[str]) -> list[dict]:
    """The SDKs and trackers these dotted class names reveal, sorted by id.

    Each is ``{"id", "name", "category", "evidence"}``: ``evidence`` is the first class (in sorted order)
    that matched.
    """
    catalog = sdk_catalog()
    classes = sorted(set(class_names))
    found: dict[str, str] = {}
    for cls in classes:
        parts = cls.split(".")
        for k in range(1, len(parts)):
            sdk_id = catalog.prefixes.get(".".join(parts[:k]))
            if sdk_id is not None:
                found.setdefault(sdk_id, cls)
                break
    blob = "\n".join(classes)
    for sdk_id, signature in catalog.signatures:
        if catalog.merged.get(sdk_id) in found:
            continue
        m = signature.search(blob)
        if m is not None:
            line_start = blob.rfind("\n", 0, m.start()) + 1
            line_end = blob.find("\n", m.end())
            found[sdk_id] = blob[line_start:line_end if line_end >= 0 else len(blob)]
    out = []
    for sdk_id in sorted(found):
        sdk = catalog.sdks[sdk_id]
        out.append({"id": sdk_id, "name": sdk.name, "category": sdk.category, "evidence": found[sdk_id]})
    return out
