"""Privacy-policy text → data-type mentions: sentences, lexicon matching, negation.

One Aho–Corasick automaton holds every term, trap, channel phrase, negation cue, reset and neutral
phrase of ``data/``. A text is scanned once; terms and traps then compete by longest
match (so 短信验证码 hides 短信), and so do cues, resets and neutral phrases. A mention is
negated when the last cue-layer phrase that starts before it in its sentence is a cue.
Some words name data only as an item of an enumeration (``enum_terms``: 账号 in 账号、密码, not
in 注册账号); they count only next to an enumeration comma or slash. The generic type
``personal_info`` (个人信息, personal data) is a term like any other but carries no permission
group and no JR/T level (see the notes of data/data_types.json). Offsets are Python ``str``
offsets into the text as given.

Two kinds of mention depend on their neighbours, and are checked only for the types concerned:

* ``channels``: SMS is data (the inbox) and also a channel the app writes to the user through. A channel
  phrase that contains a term (通过短信, 短信通知, send you text messages) hides it as a trap does; and a mention of
  a channel type is no mention when the item next to it in an enumeration is a channel phrase or word (邮件、信函、
  短信; email or SMS; 电话、短信), or a mention of a neighbour type (电子邮件、短信). A channel word loses to a longer
  term or trap, as everywhere (联系电话、短信: 联系电话 is a phone number, not the channel 电话).
* ``back_references``: a generic mention right after 上述, 前述, 这些…, the above, such (您的上述个人信息) names data
  named before, and is no mention.

A type may have a ``parent``: declaring it declares the parent too (:func:`declared_types`).

Traditional Chinese (Hong Kong, Macau, Taiwan policies) is read as Simplified: :func:`simplified`
maps each character through OpenCC's Traditional→Simplified table (character by character, so the
text keeps its length and every offset still points into the text as given).

The automaton also holds *markers*: named sets of literal phrases whose every occurrence is
reported, for other analyzers that search a text where such a phrase starts (the clause cues of
analyzers.clauses), so that one pass over a policy serves them all.
"""
from __future__ import annotations

import json
import re
import string
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from itertools import accumulate, product
from operator import itemgetter
from typing import Iterable, NamedTuple

import ahocorasick
import opencc

__all__ = [
    "DataType",
    "Lexicon",
    "Mention",
    "Reading",
    "declared_types",
    "lexicon",
    "load_json",
    "reading",
    "scan",
    "sentence_spans",
    "simplified",
]

_TERM, _TRAP, _CUE, _RESET, _NEUTRAL, _CHANNEL = range(6)
_CUE_LAYER = (_CUE, _RESET, _NEUTRAL)
_CHANNEL_TYPE, _BACK_TYPE = 1, 2  # _Entry.context
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_WORD = frozenset(string.ascii_letters + string.digits)
# str.lower does not fold these as case-insensitive regular expressions do (to i, i and s); a text that holds
# one gets no marker offsets
_UNFOLDED = ("\u0130", "\u0131", "\u017f")


def load_json(name: str) -> dict:
    """A data file of this package (``analyzers/data/NAME``)."""
    return json.loads(resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class DataType:
    """One data type of the lexicon (see data/data_types.json)."""

    id: str
    name_zh: str
    name_en: str
    group: str | None
    jrt: str | None
    permissions: tuple[str, ...]
    terms_zh: tuple[str, ...]
    terms_en: tuple[str, ...]
    enum_terms_zh: tuple[str, ...] = ()
    enum_terms_en: tuple[str, ...] = ()
    parent: str | None = None  # a more general type that declaring this one declares too


class Mention(NamedTuple):
    """A data type named in a policy: its span, its sentence's span, and whether it is negated."""

    type: str
    start: int
    end: int
    sent_start: int
    sent_end: int
    negated: bool


_new_mention = tuple.__new__  # Mention(...) without the keyword handling of NamedTuple.__new__


class Reading(NamedTuple):
    """What one pass over a text finds."""

    mentions: tuple[Mention, ...]
    sentence_ends: list[int]  # as :meth:`Lexicon.sentence_ends` has them
    # marker set -> sorted start offsets of its phrases in the lower-cased text (overlaps included, no word
    # boundaries); None when the text holds a character of _UNFOLDED
    markers: dict[str, list[int]] | None


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: int
    type: str | None
    length: int
    left: bool  # needs a word boundary before (starts with an ASCII letter or digit)
    right: bool  # needs a word boundary after
    enum: bool = False  # a mention only inside an enumeration (next to 、 or /)
    context: int = 0  # _CHANNEL_TYPE or _BACK_TYPE: a type whose mentions the context can cancel (see Lexicon.read)


def _key(phrase: str) -> str:
    return unicodedata.normalize("NFKC", phrase).translate(_ASCII_LOWER)


def _seam_variants(phrase: str) -> set[str]:
    """The phrase, plus variants with one space where Latin letters meet Chinese (IP地址 → IP 地址)."""
    seams = [i for i in range(1, len(phrase))
             if (phrase[i - 1] in _WORD) != (phrase[i] in _WORD) and " " not in phrase[i - 1:i + 1]
             and not (phrase[i - 1] in string.punctuation or phrase[i] in string.punctuation)]
    variants = set()
    for choice in product((False, True), repeat=len(seams)):
        out, prev = [], 0
        for seam, add in zip(seams, choice):
            out.append(phrase[prev:seam] + (" " if add else ""))
            prev = seam
        out.append(phrase[prev:])
        variants.add("".join(out))
    return variants


def _apostrophe_variants(phrase: str) -> set[str]:
    return {phrase, phrase.replace("'", "\u2019")}


class Lexicon:
    """The data-type lexicon, negation cues and sentence rules, compiled into one automaton.

    ``markers``: marker set name -> lower-case literal phrases, reported by :meth:`read`.
    """

    def __init__(self, data_types: dict, negation: dict, sentences: dict,
                 markers: dict[str, Iterable[str]] | None = None):
        self.types: dict[str, DataType] = {}
        self.by_permission: dict[str, str] = {}
        for raw in data_types["types"]:
            dt = DataType(
                id=raw["id"], name_zh=raw["name_zh"], name_en=raw["name_en"], group=raw.get("group"),
                jrt=raw.get("jrt"), permissions=tuple(raw.get("permissions", ())),
                terms_zh=tuple(raw.get("terms_zh", ())), terms_en=tuple(raw.get("terms_en", ())),
                enum_terms_zh=tuple(raw.get("enum_terms_zh", ())), enum_terms_en=tuple(raw.get("enum_terms_en", ())),
                parent=raw.get("parent"),
            )
            if dt.id in self.types:
                raise ValueError(f"duplicate data type {dt.id!r}")
            self.types[dt.id] = dt
            for perm in dt.permissions:
                if perm in self.by_permission:
                    raise ValueError(f"permission {perm} maps to {self.by_permission[perm]} and {dt.id}")
                self.by_permission[perm] = dt.id
        self.parents: dict[str, str] = {}
        for dt in self.types.values():
            if dt.parent is not None:
                if dt.parent not in self.types or self.types[dt.parent].parent is not None:
                    raise ValueError(f"{dt.id}: parent {dt.parent!r} is not a data type without a parent")
                self.parents[dt.id] = dt.parent
        back = data_types.get("back_references", {})
        self._back_zh = tuple(back.get("zh", ()))
        self._back_en = tuple(_key(w) for w in back.get("en", ()))
        self._back_reach = max(map(len, self._back_zh + self._back_en), default=0) + 2
        self._back_zh_last = frozenset(w[-1] for w in self._back_zh)
        channels = data_types.get("channels", {})
        # mentions of neighbour types count as channel words next to a mention of a channel type (电子邮件、短信)
        self._channel_neighbours = frozenset(channels.get("neighbour_types", ()))
        context = dict.fromkeys(back.get("types", ()), _BACK_TYPE)
        for type_id in channels.get("types", ()):
            if context.get(type_id):
                raise ValueError(f"{type_id!r} is both a channel type and a back-reference type")
            context[type_id] = _CHANNEL_TYPE
        for type_id in context.keys() | self._channel_neighbours:
            if type_id not in self.types:
                raise ValueError(f"channels or back_references: unknown data type {type_id!r}")
        self._entries: dict[str, _Entry] = {}
        for dt in self.types.values():
            for term in dt.terms_zh + dt.terms_en:
                self._add(term, _TERM, dt.id, context=context.get(dt.id, 0))
            for term in dt.enum_terms_zh + dt.enum_terms_en:
                self._add(term, _TERM, dt.id, enum=True, context=context.get(dt.id, 0))
        traps = data_types.get("traps", {})
        for phrase in traps.get("zh", []) + traps.get("en", []):
            self._add(phrase, _TRAP, None)
        # channel phrases are matched by the automaton (they hide the terms in them, as traps do); channel words
        # (邮件, 推送, phone: common words that contain no term) are looked for only next to a mention of a channel type
        phrases = channels.get("phrases", {})
        for phrase in phrases.get("zh", []) + phrases.get("en", []):
            self._add(phrase, _CHANNEL, None)
        words = set()
        for word in channels.get("words", {}).get("zh", []) + channels.get("words", {}).get("en", []):
            words |= _seam_variants(_key(word)) | _apostrophe_variants(_key(word))
        self._channel_words = tuple(sorted(words, key=len, reverse=True))
        self._channel_reach = max(map(len, words), default=0)
        for phrase in _cue_phrases(negation["cues"]):
            self._add(phrase, _CUE, None)
        for kind, section in ((_RESET, "resets"), (_NEUTRAL, "neutral")):
            for phrase in negation[section].get("zh", []) + negation[section].get("en", []):
                self._add(phrase, kind, None)
        self._markers = tuple(markers or ())
        marked: dict[str, list[str]] = {}
        for name, phrases in (markers or {}).items():
            for phrase in phrases:
                if not phrase or phrase != phrase.lower():
                    raise ValueError(f"marker {name}: {phrase!r} is not a lower-case phrase")
                marked.setdefault(phrase, []).append(name)
        self._automaton = ahocorasick.Automaton()
        values = {}
        for key, entry in self._entries.items():  # a flat tuple: cheaper to unpack than attribute reads
            values[key] = (entry.length, entry.left, entry.right, entry.kind in _CUE_LAYER, entry,
                           tuple(marked.pop(key, ())))
        for key, names in marked.items():
            values[key] = (len(key), False, False, False, None, tuple(names))
        # pyahocorasick looks a character up among the children of a trie node one child after the other, in the
        # order they were added: keys whose first character is frequent in policies go first (the matches are the
        # same in any order; the scan is faster)
        for key in sorted(values, key=_first_rank):
            self._automaton.add_word(key, values[key])
        self._automaton.make_automaton()
        self._delimiters = tuple(c for c in sentences["delimiters"] if c not in "\n.")
        self._full_stop = re.compile(r"\.(?=\s)")
        self._abbreviations = frozenset(a.lower() for a in sentences.get("abbreviations_en", ()))

    def _add(self, phrase: str, kind: int, type_id: str | None, enum: bool = False, context: int = 0) -> None:
        for variant in _seam_variants(_key(phrase)) | _apostrophe_variants(_key(phrase)):
            entry = _Entry(kind, type_id, len(variant), variant[0] in _WORD, variant[-1] in _WORD, enum, context)
            old = self._entries.get(variant)
            if old is not None and (old.kind, old.type) != (kind, type_id):
                raise ValueError(f"phrase {variant!r} is listed twice ({old.type or old.kind} and {type_id or kind})")
            self._entries[variant] = entry

    # -- sentences ---------------------------------------------------------------
    def sentence_ends(self, text: str) -> list[int]:
        """End offsets (exclusive) of the raw sentences of ``text``; the last is ``len(text)``."""
        # every delimiter becomes a newline (str.replace is the fastest way), then one split finds them all
        flat = text
        for delimiter in self._delimiters:
            flat = flat.replace(delimiter, "\n")
        parts = flat.split("\n")
        ends = [c + i for i, c in enumerate(accumulate(map(len, parts)), 1)]
        ends.pop()  # the text after the last delimiter (it ends at len(text), appended below)
        if "." in text:
            dots = [m.end() for m in self._full_stop.finditer(text) if not self._is_abbreviation(text, m.start())]
            if dots:
                ends = sorted(ends + dots)
        if not ends or ends[-1] != len(text):
            ends.append(len(text))
        return ends

    def _is_abbreviation(self, text: str, dot: int) -> bool:
        i = dot
        while i > 0 and dot - i < 12 and (text[i - 1] in _WORD or text[i - 1] == "."):
            i -= 1
        word = text[i:dot].lower()
        return bool(word) and (len(word) == 1 and word.isalpha() or word in self._abbreviations)

    # -- matching ----------------------------------------------------------------
    def _matches(self, text: str) -> tuple[list, list, dict[str, list[int]] | None]:
        """Longest non-overlapping matches of the term layer and of the cue layer, and the marker offsets."""
        low = text.lower()  # keys are lower-case; fall back when lowering changes the length (İ)
        if len(low) != len(text):
            low = text.translate(_ASCII_LOWER)
        n = len(low)
        terms, cues = [], []
        add_term, add_cue, word = terms.append, cues.append, _WORD
        found: dict[str, list[int]] = {name: [] for name in self._markers}
        for last, (length, left, right, cue, entry, marks) in self._automaton.iter(low):
            end = last + 1
            start = end - length
            if marks:
                for name in marks:
                    found[name].append(start)
                if entry is None:
                    continue
            if left and start and low[start - 1] in word:
                continue
            if right and end < n and low[end] in word:
                continue
            (add_cue if cue else add_term)((start, end, entry))
        for starts in found.values():
            starts.sort()
        markers = None if any(c in text for c in _UNFOLDED) else found
        return _longest_first(terms, n), _longest_first(cues, n), markers

    def scan(self, text: str) -> tuple[Mention, ...]:
        """Every data-type mention in ``text``, in text order."""
        return self.read(text).mentions

    def read(self, text: str) -> Reading:
        """The mentions, sentence ends and marker offsets of ``text``."""
        terms, cues, markers = self._matches(text)
        ends = self.sentence_ends(text)
        if not terms:
            return Reading((), ends, markers)
        cue_starts = [c[0] for c in cues if c[2].kind != _NEUTRAL]
        cue_neg = [c[2].kind == _CUE for c in cues if c[2].kind != _NEUTRAL]
        sentences: dict[int, tuple[int, int]] = {}
        out = []
        for k, (start, end, entry) in enumerate(terms):
            if entry.kind != _TERM or entry.enum and not _in_enumeration(text, start, end):
                continue
            if entry.context and (self._beside_channel(text, terms, k) if entry.context == _CHANNEL_TYPE
                                  else self._refers_back(text, start)):
                continue
            i = bisect_right(ends, start)
            raw_start = ends[i - 1] if i else 0
            sentence = sentences.get(i)
            if sentence is None:
                sentence = sentences[i] = _strip(text, raw_start, ends[i] if i < len(ends) else len(text))
            j = bisect_left(cue_starts, start) - 1
            negated = j >= 0 and cue_starts[j] >= raw_start and cue_neg[j]
            out.append(_new_mention(Mention, (entry.type, start, end, sentence[0], sentence[1], negated)))
        return Reading(tuple(out), ends, markers)

    def _refers_back(self, text: str, start: int) -> bool:
        """Whether a back-reference word stands right before ``start`` (上述个人信息, 您的前述个人信息, such personal
        information): the mention names data named before, not data of its own."""
        i = start - 1 if start and text[start - 1] == "的" else start
        if not i:
            return False
        last = text[i - 1]
        if last in self._back_zh_last:
            return text[max(0, i - self._back_reach):i].endswith(self._back_zh)
        if last not in _BLANKS:
            return False
        # English: a word of its own before the blank
        word = text[max(0, i - self._back_reach):i].rstrip(_BLANKS).lower()
        for back in self._back_en:
            if word.endswith(back):
                j = len(word) - len(back)
                return j == 0 or word[j - 1] not in _WORD_CHARS
        return False

    def _beside_channel(self, text: str, terms: list, k: int) -> bool:
        """Whether an enumeration neighbour of the match ``terms[k]`` (the item right before or after it, with only an
        enumeration separator between them) is a channel phrase or word, or a mention of a neighbour type."""
        start, end = terms[k][0], terms[k][1]
        edge = _item_end_before(text, start)
        if edge > 0:
            other = terms[k - 1] if k else None
            if other is not None and other[1] == edge:  # a phrase of the automaton ends the item: it decides
                if self._channel_like(other[2]):
                    return True
            elif self._ends_with_word(text, edge, other[1] if other is not None else 0):
                return True
        edge = _item_start_after(text, end)
        if 0 <= edge < len(text):
            other = terms[k + 1] if k + 1 < len(terms) else None
            if other is not None and other[0] == edge:
                if self._channel_like(other[2]):
                    return True
            elif self._starts_with_word(text, edge, other[0] if other is not None else len(text)):
                return True
        return False

    def _channel_like(self, entry: _Entry) -> bool:
        return entry.kind == _CHANNEL or entry.kind == _TERM and entry.type in self._channel_neighbours

    def _ends_with_word(self, text: str, edge: int, floor: int) -> bool:
        """Whether a channel word ends at ``edge`` and starts at or after ``floor`` (no match of the automaton
        overlaps it)."""
        window = text[max(floor, edge - self._channel_reach):edge].lower()
        for word in self._channel_words:
            if window.endswith(word):
                begin = edge - len(word)
                return not (word[0] in _WORD and begin > 0 and text[begin - 1] in _WORD_CHARS)
        return False

    def _starts_with_word(self, text: str, edge: int, ceiling: int) -> bool:
        window = text[edge:min(ceiling, edge + self._channel_reach)].lower()
        for word in self._channel_words:
            if window.startswith(word):
                stop = edge + len(word)
                return not (word[-1] in _WORD and stop < len(text) and text[stop] in _WORD_CHARS)
        return False

    def groups(self, type_ids: Iterable[str]) -> frozenset[str]:
        """Permission-group labels (CAL, CAM, …) of some data types."""
        return frozenset(g for t in type_ids if (g := self.types[t].group))


def _cue_phrases(cues: dict) -> set[str]:
    out = set(cues["zh"]["phrases"]) | set(cues["en"]["phrases"])
    out |= {n + v for n, v in product(cues["zh"]["negators"], cues["zh"]["verbs"])}
    out |= {f"{n} {v}" for n, v in product(cues["en"]["negators"], cues["en"]["verbs"])}
    return out


def _longest_first(matches: list, n: int) -> list:
    """Greedy longest-first (then leftmost) selection of non-overlapping matches, in text order.

    Matches that overlap nothing are kept as they are; the greedy choice runs only inside each run of
    overlapping matches (the choice in one run cannot depend on another run).
    """
    if len(matches) < 2:
        return matches
    matches.sort(key=_start)
    out: list = []
    run: list = []
    run_end = -1
    for m in matches:
        if m[0] >= run_end:
            if len(run) > 1:
                out.extend(_greedy(run))
            elif run:
                out.append(run[0])
            run = [m]
            run_end = m[1]
        else:
            run.append(m)
            if m[1] > run_end:
                run_end = m[1]
    out.extend(_greedy(run) if len(run) > 1 else run)
    return out


_start = itemgetter(0)


def _greedy(run: list) -> list:
    if len(run) == 2:  # most runs: the longer match, or the first when both are as long
        first, second = run
        return [second if second[1] - second[0] > first[1] - first[0] else first]
    run.sort(key=lambda m: (m[0] - m[1], m[0]))
    chosen: list = []
    for m in run:
        if all(m[1] <= c[0] or c[1] <= m[0] for c in chosen):
            chosen.append(m)
    chosen.sort(key=_start)
    return chosen


# the first characters of lexicon phrases that are most frequent in privacy policies, most frequent first
_FREQUENT_FIRST = {c: i for i, c in enumerate("您信用我人或服个使提以和方关行本会供户如公不有为相其（1要oi同收等将安e通与意对定c产合所"
                                              "ap并下护应s向发第私设隐共")}


def _first_rank(key: str) -> int:
    return _FREQUENT_FIRST.get(key[0], len(_FREQUENT_FIRST))


_ENUM_SEPARATORS = frozenset("、/／")
# what may stand between two items of an enumeration: 邮件、短信, 短信或电话, email, SMS, email or SMS (longest first)
_GAP_TOKENS = ("以及", "或者", "及其", "、", "/", "／", ",", "，", "或", "和", "及", "与", "&")
_GAP_WORDS = ("or", "and")  # English, with a space (or a comma) on both sides
_BLANKS = " \t\u3000"
_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_")


def _item_end_before(text: str, pos: int) -> int:
    """Where the enumeration item before ``pos`` ends, when only a separator stands between them; else -1."""
    i = _skip_back(text, pos)
    for token in _GAP_TOKENS:
        if i >= len(token) and text.startswith(token, i - len(token)):
            return _skip_back(text, i - len(token))
    for token in _GAP_WORDS:  # "email or SMS", "email, or SMS": a blank on both sides of the word
        j = i - len(token)
        if i < pos and j > 0 and text.startswith(token, j) and text[j - 1] in _BLANKS:
            j = _skip_back(text, j)
            return _skip_back(text, j - 1) if j > 0 and text[j - 1] == "," else j
    return -1


def _skip_back(text: str, i: int) -> int:
    while i > 0 and text[i - 1] in _BLANKS:
        i -= 1
    return i


def _skip_on(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _BLANKS:
        i += 1
    return i


def _item_start_after(text: str, pos: int) -> int:
    """Where the enumeration item after ``pos`` starts, when only a separator stands between them; else -1."""
    i = _skip_on(text, pos)
    separated = False
    for token in _GAP_TOKENS:
        if text.startswith(token, i):
            i = _skip_on(text, i + len(token))
            separated = True
            break
    for token in _GAP_WORDS:  # "SMS or email", "SMS, or email": a blank on both sides of the word
        j = i + len(token)
        if i > pos and text.startswith(token, i) and j < len(text) and text[j] in _BLANKS:
            return _skip_on(text, j)
    return i if separated else -1


def _in_enumeration(text: str, start: int, end: int) -> bool:
    """Whether the span is an item of an enumeration: an enumeration comma or slash right before or after it."""
    return (start > 0 and text[start - 1] in _ENUM_SEPARATORS) or (end < len(text) and text[end] in _ENUM_SEPARATORS)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The package lexicon, built once; its markers are the literal prefixes of the clause cues."""
    from .clauses import cue_prefixes  # imported here: analyzers.clauses imports this module

    return Lexicon(load_json("data_types.json"), load_json("negation.json"), load_json("sentences.json"),
                   markers=cue_prefixes())


# the CJK blocks whose characters have Traditional forms: Extension A, Unified Ideographs, Compatibility Ideographs
_CJK_BLOCKS = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


@lru_cache(maxsize=1)
def _simplified_table() -> dict[int, str]:
    """Traditional → Simplified, character by character (OpenCC's t2s; a character it would turn into
    several is left as it is)."""
    chars = [chr(c) for lo, hi in _CJK_BLOCKS for c in range(lo, hi)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a line break merged or split: the table would be misaligned
        raise RuntimeError("OpenCC t2s changed the number of lines")
    return {ord(a): b for a, b in zip(chars, converted) if len(b) == 1 and a != b}


@lru_cache(maxsize=1)
def _traditional() -> re.Pattern:
    """Any character the table changes (a search is much faster than a translate that changes nothing)."""
    return re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_simplified_table())) + "]")


@lru_cache(maxsize=64)
def simplified(text: str) -> str:
    """``text`` with Traditional Chinese characters in their Simplified forms; same length, same offsets."""
    if _traditional().search(text) is None:
        return text
    return text.translate(_simplified_table())


@lru_cache(maxsize=512)
def reading(text: str) -> Reading:
    """The package lexicon's reading of ``text``, read as Simplified Chinese (cached: one policy is often shared
    by several apps, and read by several rules)."""
    return lexicon().read(simplified(text))


def scan(text: str) -> tuple[Mention, ...]:
    """Mentions in ``text`` (cached)."""
    return reading(text).mentions


def declared_types(mentions: Iterable[Mention]) -> frozenset[str]:
    """Data types that some sentence mentions affirmatively, with the parent of each (motion_sensors declares
    device_sensors too)."""
    declared = frozenset(m.type for m in mentions if not m.negated)
    parents = lexicon().parents
    if any(t in parents for t in declared):
        declared |= {parents[t] for t in declared if t in parents}
    return declared


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty sentence of ``text``, surrounding whitespace excluded."""
    spans, prev = [], 0
    for end in lexicon().sentence_ends(text):
        s, e = _strip(text, prev, end)
        if s < e:
            spans.append((s, e))
        prev = end
    return spans


def policy_diff(old_text: str, new_text: str, old_name: str = "old", new_name: str = "new") -> dict[str, list[str]]:
    """What changed from one policy text to another: the data types declared that were added or removed, and a
    sentence-by-sentence unified diff (one sentence of context)."""
    import difflib

    old_types, new_types = declared_types(scan(old_text)), declared_types(scan(new_text))
    lines = difflib.unified_diff([old_text[a:b] for a, b in sentence_spans(old_text)],
                                 [new_text[a:b] for a, b in sentence_spans(new_text)],
                                 fromfile=old_name, tofile=new_name, lineterm="", n=1)
    return {"declared_added": sorted(new_types - old_types), "declared_removed": sorted(old_types - new_types),
            "diff": list(lines)}
