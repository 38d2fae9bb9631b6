"""Privacy-policy clauses: does a policy give a way to withdraw consent, to delete or correct, a complaint
channel; does it share personal information without naming any recipient; which sentences state a purpose of
processing, and which sensitive data it declares collecting without stating any purpose.

The cues are regular expressions in ``data/policy_clauses.json`` (zh and en), compiled once. A sharing
sentence is negated when a negation cue of that file occurs before its sharing cue. Every cue is matched
against the text read as Simplified Chinese (:func:`analyzers.policy_text.simplified`, offsets unchanged).

Collection is read from declarations (:func:`declarations`): a mention in a sentence that says the app collects the
data, or the user provides it to the app, and is no definition; or an item of a list led in by such a line. A
purpose counts when a sentence states one (为了, 用于) or the feature the data serves (当您申请借款时, 一、开户服务),
next to a mention, in its list's lead-in or its section's heading (:func:`without_purpose`). Implied consent that
is the user's own explicit act (勾选同意即视为…) does not count; login and payment brands (微信, 支付宝) name a sharing
recipient only in an SDK or third-party list (:func:`names_sdk`).

Speed: each cue list is one alternation, and Python's ``re`` tries every alternative at every position of a
text (about a millisecond per policy and cue). But almost every alternative starts with one of a few literal
strings (撤回, 与第三方, share…), read off the parsed expression (:func:`cue_prefixes`). These prefixes are
markers of the lexicon's automaton (analyzers.policy_text), so the pass that finds the data-type mentions also
finds where each prefix starts; a cue's expression is then tried only at those positions, in text order
(``Pattern.match``), which finds exactly the match ``Pattern.search`` finds. A cue with an alternative that has
no literal prefix, or a text whose marker offsets are unknown, is searched with ``re`` as before.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from re import _constants as sre
from re import _parser as sre_parse
from typing import Callable, Iterable, Iterator, NamedTuple

from .policy_text import Mention, _strip, load_json, reading, sentence_spans, simplified
from .sdks import sdk_catalog

__all__ = ["ClauseCues", "Cue", "Either", "cache_clear", "channel_at", "clause_at", "clause_cues", "clause_sentences",
           "counts", "cue_prefixes", "declarations", "has_clause", "has_contact_channel", "names_recipient", "names_sdk",
           "purpose_sentences", "sharing_sentences", "without_purpose"]

_FLAGS = re.IGNORECASE
_LATIN = re.compile("[A-Za-z]")
_MAX_PREFIXES = 1024  # literal prefixes kept per alternative; past that the prefix is cut shorter
_MAX_CLASS = 16  # a character class of up to this many characters is expanded into its characters
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
# cues only ever searched inside one sentence, where a plain search is as fast: no prefixes, no markers
_IN_SENTENCE = frozenset({"negation", "collection", "definition"})
_NOT_IN_HEADINGS = frozenset({"third_party_sharing"})  # clauses whose statements are never a heading
_FINAL = "。．.！!？?"  # a line ending with one of these is a closed sentence
_CLOSED = _FINAL + "；;"  # ... or a list item
_COUNT = "(?:[0-9]{1,3}|[一二三四五六七八九十]{1,3})"
_NUMBER = re.compile(rf"[\s*_#>]*(?:[（(]{_COUNT}[)）]|{_COUNT}[)）、.．](?![0-9])"
                     r"|[0-9]{1,3}(?:[.．][0-9]{1,3})+[)）、.．]?(?![0-9.．]))")  # an item number: （2）, 1., 1.2.3
_MARKUP = " \t\r\n\u3000*_#>`~|"  # markdown and spaces around a line's words
_ENUMERATOR = re.compile(rf"[\s*_#>•·\-]*(?:[（(]?{_COUNT}[)）、.．]\s*)?[\s*_#]*")  # markup and item number
_MAX_ITEMS = 20  # list items walked back to find a list's lead-in line
_MAX_SECTION = 8  # sentences walked back to find a section's heading
_HEADING_ZH, _HEADING_EN = 30, 60  # longest heading, in characters
_CHANNEL_REACH = 16  # characters before and after a mention read for a channel cue
_CONTACT_REACH = 300  # characters around a complaint cue read for a contact detail and its subject
_LINE_REACH = 40  # characters after a customer-service line (客服热线) read for its number
_FOOTER_REACH = 200  # characters around such a line read for a page footer's copyright or ICP filing line
_NOT_A_ROUTE_REACH = 60  # characters before a route's cue read for a sanction or a duty, after it for whose data
_LINK_REACH = 40  # characters after a pointer to a list read for a link
_TERM_REACH = 24  # characters before a definition (：指…) read for the term it defines
_ALIAS_REACH = 80  # characters before a bracketed short name (（统称为“暴雪”）) read for the company it names
_REFERENCE_REACH = 20  # characters before a list's name read for a reference to it (请见《…)
_NOT_USED_REACH = 40  # characters of the line after a heading read for "not used"
_MAX_BELOW = 3  # lines read under a heading that names the data, for a declaration
_BELOW = 2  # _declaration: declared by the lines under a heading (truthy, and not True)
_HEADING_EXTRA = 6  # characters of such a heading besides the data's name
_MAX_NAMES = 16  # data-type mentions looked at in a heading
_START = attrgetter("start")


class Either(NamedTuple):
    """A cue list of two expressions, zh and en: the en one is only tried where a sentence has a Latin letter (one
    alternation of both is several times slower on a Chinese sentence)."""

    zh: re.Pattern
    en: re.Pattern

    def search(self, text: str, start: int, end: int) -> re.Match | None:
        m = self.zh.search(text, start, end)
        if m is None and _LATIN.search(text, start, end) is not None:
            m = self.en.search(text, start, end)
        return m


class Cue(NamedTuple):
    """One cue list compiled into an alternation, and the literal prefixes that every match starts with."""

    name: str  # the name of its marker set in the lexicon
    pattern: re.Pattern
    prefixes: frozenset[str] | None  # lower-case; None: some alternative has no literal prefix


@dataclass(frozen=True)
class ClauseCues:
    clauses: dict[str, Cue]
    contact: Cue
    complaint_subject: re.Pattern  # personal information as what a complaint channel is for…
    service_line: Cue  # …unless it is a customer-service line (客服热线): a channel by itself…
    page_footer: re.Pattern  # …when it is not in the web page's footer (版权所有, ICP备)
    negation: Cue
    company: re.Pattern
    generic_company: frozenset[str]
    generic_words: tuple[str, ...]  # in a company-like phrase: a kind of company, not a name (第三方配送公司)…
    legal_form: re.Pattern  # …unless what follows them ends in a legal form (第三方北京星河配送有限公司)
    legal_form_anywhere: re.Pattern  # a legal form (有限公司, Inc., LLC) wherever it is in a name
    listed: Cue  # a recipient's name anywhere in the text
    lists: Cue  # a list of recipients (第三方SDK目录)
    defined_term: re.Pattern  # a definition by a company's name (：指Inter IKEA Systems B.V.), the name in group 1…
    term: re.Pattern  # …and the term it defines, alone on its line before it (宜家特许经营系统)
    alias: re.Pattern  # a short name given in brackets (（统称为“暴雪”）), its quoted names in group 1
    alias_gap: re.Pattern  # what may stand between a company's name and its bracketed short name
    quoted: re.Pattern
    recipient_slot: re.Pattern  # before a name in a sharing sentence: where a recipient stands (与…, 向…)
    referred_to: re.Pattern  # before a list: the text only refers to it (请见《…清单》)
    in_the_document: re.Pattern  # …as a part of the document itself (本政策附件《…清单》)
    linked_away: re.Pattern  # matched right after a pointer to a list: a link out of the text
    purpose: Cue
    sensitive_types: tuple[str, ...]  # data types whose collection needs a stated purpose (C206)
    kinds_of: dict[str, tuple[str, ...]]  # a general type -> its kinds: a purpose of a kind is one of the general type
    collection: Cue
    definition: Cue
    # the rest is only ever searched inside one sentence or a few characters: plain patterns
    definition_start: re.Pattern  # matched where a sentence's words start
    lead_in: re.Pattern  # searched in a line's words: the line ends open (：, ，, 的…)
    back_reference: re.Pattern  # a lead-in that points back to the sentence before it (这些信息包括：)
    channel_types: frozenset[str]
    channel_before: re.Pattern  # searched in the characters right before a mention (anchored with $)
    channel_code: re.Pattern  # in a mention's sentence: read only to fill in a verification code
    channel_after: re.Pattern  # matched right after a mention
    channel_unless: re.Pattern  # in or right after a mention: a permission, never a channel
    not_used: re.Pattern
    context: Either  # a purpose stated as the feature being used (C206 only)…
    generic_context: re.Pattern  # …not the service at large (当您使用我们的服务时), matched where a context cue starts
    input_use: re.Pattern  # the data named are what a stated use runs on (根据您提供的姓名、银行卡号…查询): theirs only
    not_declaring: Either  # a sentence that declares nothing of the app's own: 您可以访问、更正…
    heading_feature: re.Pattern
    explicit_act: re.Pattern
    explicit_use: re.Pattern
    consequence: re.Pattern
    user_subject: re.Pattern  # the user as the one who shares (您)
    app_subject: re.Pattern  # the app as the one who shares (我们)
    compelled: re.Pattern  # a law or an authority as the reason (根据法律…向司法机关披露): not sharing
    on_consent: re.Pattern  # sharing that waits for the user's explicit consent (获得您的明确同意后): not sharing
    not_personal: re.Pattern  # what is shared is not personal information (非个人身份信息, aggregated data)…
    personal: re.Pattern  # …unless personal information is shared too (您的个人信息)
    not_a_route: re.Pattern  # before a cue, the operator's power (本公司有权…注销用户账号) or the user's duty (须…及时更新)
    not_a_route_clauses: frozenset[str]
    others_data: re.Pattern  # from a route's cue to its clause's end: a child's data (删除该青少年的个人信息)
    brand_categories: frozenset[str]  # SDK categories whose names are consumer brands too
    brand_context: re.Pattern
    brand_window: int


def _alternation(patterns: list[str]) -> re.Pattern:
    """One expression for the list. When every match starts with a known literal prefix, a lookahead for their first
    characters comes first: ``re`` then skips the positions where none starts instead of trying every alternative
    there (several times faster on a sentence; the matches are the same)."""
    if not patterns:
        raise ValueError("an empty cue list")
    joined = "|".join(f"(?:{p})" for p in patterns)
    prefixes = _cue_prefixes(patterns)
    if prefixes:
        joined = f"(?=[{''.join(re.escape(c) for c in sorted({p[0] for p in prefixes}))}])(?:{joined})"
    return re.compile(joined, _FLAGS)


@lru_cache(maxsize=1)
def clause_cues() -> ClauseCues:
    """The cues of data/policy_clauses.json, compiled once."""
    data = load_json("policy_clauses.json")
    lists = {f"clause:{cid}": c.get("zh", []) + c.get("en", []) for cid, c in data["clauses"].items()}
    neg = data["negation"]
    lists["negation"] = [re.escape(p) for p in neg["zh"]] + [rf"\b{re.escape(p)}\b" for p in neg["en"]]
    lists["contact"] = data["contact_patterns"]
    lists["service_line"] = data["service_line"]["zh"] + data["service_line"]["en"]
    named = data["named_recipient"]
    lists["listed"] = named["anywhere"]
    lists["lists"] = named["lists"]
    lists["purpose"] = data["purpose"]["zh"] + data["purpose"]["en"]
    sensitive = data["sensitive_collection"]
    for part in ("collection", "definition"):
        lists[part] = sensitive[part]["zh"] + sensitive[part]["en"]
    cues = {name: Cue(name, _alternation(patterns), None if name in _IN_SENTENCE else _cue_prefixes(patterns))
            for name, patterns in lists.items()}
    clauses = {name.removeprefix("clause:"): cue for name, cue in cues.items() if name.startswith("clause:")}
    channel, explicit, brands = sensitive["channel"], data["explicit_consent"], named["sdk_brands"]

    def both(part: dict) -> re.Pattern:
        return _alternation(part["zh"] + part["en"])

    def either(part: dict) -> Either:
        return Either(_alternation(part["zh"]), _alternation(part["en"]))

    return ClauseCues(
        clauses=clauses, contact=cues["contact"], complaint_subject=both(data["complaint_subject"]),
        service_line=cues["service_line"], page_footer=_alternation(data["service_line"]["page_footer"]),
        negation=cues["negation"],
        company=_alternation(named["company_in_sentence"]), generic_company=frozenset(named["generic_company"]),
        generic_words=tuple(named["generic_words"]), legal_form=re.compile(named["legal_form"]),
        legal_form_anywhere=_alternation(named["legal_forms"]),
        listed=cues["listed"], lists=cues["lists"], linked_away=re.compile(named["linked_away"], _FLAGS),
        defined_term=re.compile(named["defined_term"], _FLAGS), term=re.compile(named["term"]),
        alias=re.compile(named["alias"], _FLAGS), alias_gap=re.compile(named["alias_gap"]),
        quoted=re.compile(named["quoted"]), recipient_slot=re.compile(named["recipient_slot"]),
        referred_to=re.compile(named["referred_to"], _FLAGS),
        in_the_document=re.compile(named["in_the_document"], _FLAGS), purpose=cues["purpose"],
        sensitive_types=tuple(sensitive["types"]),
        kinds_of={general: tuple(kinds) for general, kinds in sensitive["kinds_of"].items()},
        collection=cues["collection"], definition=cues["definition"],
        definition_start=both(sensitive["definition_start"]), lead_in=both(sensitive["lead_in"]),
        back_reference=both(sensitive["back_reference"]), channel_types=frozenset(channel["types"]),
        channel_before=both(channel["before"]), channel_after=both(channel["after"]),
        channel_code=both(channel["verification_code"]),
        channel_unless=_alternation(channel["unless"]), not_used=both(sensitive["not_used"]),
        context=either(sensitive["context"]), generic_context=both(sensitive["generic_context"]),
        input_use=both(sensitive["input_use"]),
        not_declaring=either(sensitive["not_declaring"]),
        heading_feature=both(sensitive["heading_feature"]), explicit_act=both(explicit["act"]),
        explicit_use=both(explicit["use"]), consequence=both(explicit["consequence"]),
        user_subject=both(data["sharing_subject"]["user"]), app_subject=both(data["sharing_subject"]["app"]),
        compelled=both(data["sharing_subject"]["compelled"]), on_consent=both(data["sharing_subject"]["on_consent"]),
        not_personal=both(data["sharing_subject"]["not_personal"]), personal=both(data["sharing_subject"]["personal"]),
        not_a_route=both(data["not_a_route"]), not_a_route_clauses=frozenset(data["not_a_route"]["clauses"]),
        others_data=both(data["not_a_route"]["others_data"]),
        brand_categories=frozenset(brands["categories"]), brand_context=_alternation(brands["context"]),
        brand_window=int(brands["window"]))


def cue_prefixes() -> dict[str, frozenset[str]]:
    """The literal prefixes of each cue searched across a text, by cue name (the lexicon's markers)."""
    cues = clause_cues()
    every = [*cues.clauses.values(), cues.contact, cues.service_line, cues.listed, cues.lists, cues.purpose]
    return {cue.name: cue.prefixes for cue in every if cue.prefixes is not None}


def has_clause(text: str, clause_id: str) -> bool:
    """Whether the policy has the clause: :func:`clause_at` finds where it is stated."""
    return clause_at(text, clause_id) is not None


def clause_at(text: str, clause_id: str) -> int | None:
    """Where the first of the clause's cues in ``text`` starts; for the clauses of data/policy_clauses.json's
    ``not_a_route``, the first that is not the operator's sanction (本公司有权…注销用户账号) or the user's duty
    (须…及时更新您的个人信息), nor a guardian's route for a child's data (要求我们删除该青少年的个人信息)."""
    cues = clause_cues()
    cue = cues.clauses[clause_id]
    if clause_id not in cues.not_a_route_clauses:
        m = _search(text, cue, 0, len(text))
        return None if m is None else m.start()
    simple, pos = simplified(text), 0
    while (m := _search(text, cue, pos, len(text))) is not None:
        reach = max(0, m.start() - _NOT_A_ROUTE_REACH)
        start = max(reach, *(simple.rfind(c, reach, m.start()) + 1 for c in "。；;.\n"))
        limit = min(len(text), m.end() + _NOT_A_ROUTE_REACH)
        end = min([limit, *(i for c in "。；;，,\n" if (i := simple.find(c, m.end(), limit)) >= 0)])
        if (cues.not_a_route.search(simple, start, m.start()) is None
                and cues.others_data.search(simple, m.start(), end) is None):
            return m.start()
        pos = max(m.end(), m.start() + 1)
    return None


def has_contact_channel(text: str) -> bool:
    """Whether the policy publishes a complaint or contact channel: :func:`channel_at` finds it."""
    return channel_at(text) is not None


def channel_at(text: str) -> int | None:
    """Where the channel the policy offers for personal information starts: the first complaint/contact cue with a
    contact detail (e-mail, phone or address) and a word of personal information, of the policy or of complaints
    (个人信息, 隐私, 本政策, 投诉) within 300 characters of it (not a page footer, nor an address given for something
    else far away), or the first customer-service line (客服热线, 联系电话) with a number or an e-mail address right
    after it, outside the web page's footer (a copyright or ICP filing line in reach); None when there is neither."""
    cues = clause_cues()
    simple, line_at, pos = simplified(text), None, 0
    while (line := _search(text, cues.service_line, pos, len(text))) is not None:
        if (_has_number(text, line.end(), min(len(text), line.end() + _LINE_REACH))
                and cues.page_footer.search(simple, max(0, line.start() - _FOOTER_REACH),
                                            line.end() + _FOOTER_REACH) is None):
            line_at = line.start()
            break
        pos = line.end()
    pos, before = 0, len(text) if line_at is None else line_at  # only a cue before that line can come first
    while (m := _search(text, cues.clauses["complaint_channel"], pos, before)) is not None:
        start, end = max(0, m.start() - _CONTACT_REACH), min(len(text), m.end() + _CONTACT_REACH)
        if (_search(text, cues.contact, start, end) is not None
                and cues.complaint_subject.search(simple, start, end) is not None):
            return m.start()
        pos = m.end()
    return line_at


def _has_number(text: str, start: int, end: int) -> bool:
    """Whether a contact detail in ``text[start:end]`` is a phone number or an e-mail address (not only a label of
    one, as a blank template's 注册地址：--)."""
    cue = clause_cues().contact
    while (m := _search(text, cue, start, end)) is not None:
        if "@" in m.group(0) or any(c.isdigit() for c in m.group(0)):
            return True
        start = m.end()
    return False


@lru_cache(maxsize=1024)
def clause_sentences(text: str, clause_id: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence where the clause's cue occurs with no negation cue before it.

    Some matches do not count (:func:`counts`): for ``third_party_sharing`` a match where the user, not the app, is
    the one who provides (您通过…向其他方提供), one compelled by law, one that waits for the user's explicit consent
    (获得您的明确同意后，我们会与其他方共享), and headings (（四）委托处理) are no statements; for
    ``implied_consent`` a match whose condition is an explicit act of the user (勾选/点击同意…即视为, by clicking
    "I agree"), unless a use of the app is offered as an alternative (点击同意或继续使用…). Another match later in the
    sentence may still count.
    """
    cues = clause_cues()
    cue = cues.clauses[clause_id]
    simple = simplified(text)
    out = []
    for (start, end), m in _sentence_matches(text, cue):
        if _negated(simple, start, m.start()):
            continue
        if clause_id in _NOT_IN_HEADINGS and _bare_heading(simple, start, end):
            continue
        if counts(clause_id, simple, start, m) or any(counts(clause_id, simple, start, n)
                                                      for n in cue.pattern.finditer(simple, m.end(), end)):
            out.append((start, end))
    return tuple(out)


def counts(clause_id: str, text: str, start: int, m: re.Match) -> bool:
    """Whether the clause cue's match ``m`` in the sentence that starts at ``start`` of the Simplified ``text`` counts:
    no negation cue before it, and, for the clauses that have one, no other reason against it (see
    :func:`clause_sentences`)."""
    cues = clause_cues()
    if _negated(text, start, m.start()):
        return False
    if clause_id == "implied_consent":
        return not _explicit(text, start, m)
    if clause_id == "third_party_sharing":
        return (not _user_acts(text, start, m) and cues.compelled.search(text, start, m.end()) is None
                and cues.on_consent.search(text, start, m.start()) is None and not _not_personal(text, start, m))
    return True


def _not_personal(text: str, start: int, m: re.Match) -> bool:
    """Whether what the sharing match ``m`` shares is said to be no personal information (经统计加工的非个人身份信息,
    aggregated data), with no personal information named beside it."""
    cues = clause_cues()
    return (cues.not_personal.search(text, start, m.end()) is not None
            and cues.personal.search(text, start, m.end()) is None)


def _negated(text: str, start: int, end: int) -> bool:
    """Whether a negation cue occurs in [start, end) of the Simplified ``text``, outside quotation marks and titles
    (a section named “我们如何共享信息” negates nothing)."""
    for m in clause_cues().negation.pattern.finditer(text, start, end):
        if not any((o := text.rfind(left, start, m.start())) >= 0 and text.find(right, o, m.start()) < 0
                   for left, right in _QUOTES):
            return True
    return False


_QUOTES = (("“", "”"), ("《", "》"), ("「", "」"), ("『", "』"))


def _bare_heading(text: str, start: int, end: int) -> bool:
    """A heading (（四）委托处理, 与第三方共享：) that has no we (我们, we) in it: a title, not a statement."""
    return _is_heading(text, start, end) and clause_cues().app_subject.search(text, start, end) is None


def _user_acts(text: str, start: int, m: re.Match) -> bool:
    """Whether the user, not the app, is the one who shares: 您 (you) in the clause before the sharing cue and no
    we (我们, 本公司…)."""
    cues = clause_cues()
    clause = start
    for sep in "，,：:":
        clause = max(clause, text.rfind(sep, start, m.start()) + 1)
    return (cues.user_subject.search(text, clause, m.start()) is not None
            and cues.app_subject.search(text, clause, m.start()) is None)


def _explicit(text: str, start: int, m: re.Match) -> bool:
    """Whether the condition of an implied-consent match (from its sentence's ``start`` to the consequence 视为/表示,
    deemed…) is an explicit act of the user (勾选, 点击, 选择“同意”, click, tick) and offers no use of the app as an
    alternative (或继续使用, or use…). ``text`` is the Simplified text."""
    cues = clause_cues()
    consequence = cues.consequence.search(text, m.start(), m.end())
    end = consequence.start() if consequence is not None else m.end()
    return (cues.explicit_act.search(text, start, end) is not None
            and cues.explicit_use.search(text, start, end) is None)


def sharing_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence that affirmatively says personal information is shared or provided."""
    return clause_sentences(text, "third_party_sharing")


def names_sdk(text: str, own: Iterable[str] = ()) -> str | None:
    """The first name of an SDK of data/sdks.json's table that ``text`` names as an SDK, or None; not one of the
    operator's own (its vendor or its name holds one of the ``own`` names: Google Analytics and Google DoubleClick in
    Google's policy).

    Names of SDKs of the brand categories (payment, social login: 微信, QQ登录, 支付宝, 银联…) are also what a policy
    calls a login or payment method (使用微信登录, 支持支付宝付款) or the app itself; such a name counts only with an
    SDK-list cue (SDK, the SDK's vendor, 提供方…) within the window around it, as in an SDK or third-party list.
    """
    cues = clause_cues()
    text = simplified(text)
    own_names = _own_cores(own)

    def named_as_sdk(sdk, start: int, end: int) -> bool:
        if any(_is_own(name, own_names) for name in (sdk.vendor, sdk.name, text[start:end])):
            return False
        return sdk.category not in cues.brand_categories or _sdk_context(text, start, end, sdk.vendor)

    return sdk_catalog().named_any(text, named_as_sdk)


def _sdk_context(text: str, start: int, end: int, vendor: str) -> bool:
    cues = clause_cues()
    lo, hi = max(0, start - cues.brand_window), min(len(text), end + cues.brand_window)
    return bool(vendor and vendor in text[lo:hi]) or cues.brand_context.search(text, lo, hi) is not None


def names_recipient(text: str, sentences: tuple[tuple[int, int], ...], own: Iterable[str] = ()) -> bool:
    """Whether the policy names a recipient: a company in a sharing sentence, a provider's name anywhere, or a
    list of third parties given in the text: not one it only links to (《第三方SDK清单》（https://…）) or refers to
    (请见《第三方信息共享清单》, 点击查看SDK详情), unless as a part of itself (本政策附件《第三方SDK清单》). A company
    named by one of the ``own`` names (the app's, its developer's) is the operator, not a recipient ("outside of
    Google", "与星河科技有限公司的关联公司")."""
    cues = clause_cues()
    simple = simplified(text)
    own_names = _own_cores(own)
    pos = 0
    while (m := _search(text, cues.listed, pos, len(text))) is not None:
        if not _is_own(m.group(0), own_names):
            return True
        pos = max(m.end(), m.start() + 1)
    pos = 0
    while (m := _search(text, cues.lists, pos, len(text))) is not None:
        if cues.linked_away.match(simple, m.end(), m.end() + _LINK_REACH) is None:
            before = max(0, m.start() - _REFERENCE_REACH)
            if (cues.referred_to.search(simple, before, m.start()) is None
                    or cues.in_the_document.search(simple, before, m.start()) is not None):
                return True
        pos = max(m.end(), m.start() + 1)

    def other_company(phrase: str) -> bool:
        return names_company(phrase) and not _is_own(phrase, own_names)

    if any(other_company(m.group(0)) for start, end in sentences for m in cues.company.finditer(simple, start, end)):
        return True
    aliases = defined_names(simple, other_company)  # read the whole text only when no sentence names a company
    return bool(aliases) and any(_names_alias(simple, start, end, aliases) for start, end in sentences)


def defined_names(simple: str, names_other: Callable[[str], bool]) -> frozenset[str]:
    """The short names the Simplified text ``simple`` gives to companies that ``names_other`` accepts (not the
    operator): a term defined as a company (宜家特许经营系统：指Inter IKEA Systems B.V.) or a quoted name in brackets
    right after one (暴雪娱乐有限公司（Blizzard Entertainment, Inc.）及其关联公司（统称为“暴雪”）). Names given to a
    kind of company or to the operator itself (（以下简称“我们”）) are left out."""
    cues = clause_cues()
    found = set()
    for m in cues.defined_term.finditer(simple):
        reach = max(0, m.start() - _TERM_REACH)
        line = max(simple.rfind(c, reach, m.start()) for c in "。；;\n") + 1
        if line == 0 and reach > 0:
            continue  # no line starts near: the term is not alone on its line
        if (term := cues.term.fullmatch(simple, line, m.start())) is not None and names_other(m.group(1)):
            found.add(term.group(1).strip())
    for m in cues.alias.finditer(simple):
        if cues.app_subject.search(m.group(1)) is not None:
            continue
        lo = max(0, m.start() - _ALIAS_REACH)
        if any(names_other(c.group(0)) and cues.alias_gap.fullmatch(simple, c.end(), m.start())
               for c in cues.company.finditer(simple, lo, m.start())):
            found.update(q.group(1).strip() for q in cues.quoted.finditer(m.group(1)))
    return frozenset(name for name in found if cues.app_subject.search(name) is None
                     and not any(name.endswith(g) for g in cues.generic_company) and name not in cues.generic_words)


def _names_alias(text: str, start: int, end: int, aliases: frozenset[str]) -> bool:
    """Whether one of ``aliases`` occurs in the sentence [start, end) of the Simplified ``text`` where a recipient
    stands (与…, 向…, 在…内, 由…, 包括…), not as the one who shares."""
    cues = clause_cues()
    for alias in aliases:
        pos = text.find(alias, start, end)
        while pos >= 0:
            if cues.recipient_slot.search(text, start, pos) is not None:
                return True
            pos = text.find(alias, pos + 1, end)
    return False


def _own_cores(own: Iterable[str]) -> frozenset[str]:
    """The cores (:func:`_name_core`) of the operator's names long enough to tell it by (4 Latin letters, 2 CJK)."""
    return frozenset(core for name in own if name and len(core := _name_core(name)) >= (4 if core.isascii() else 2))


def _is_own(phrase: str, own_cores: frozenset[str]) -> bool:
    """Whether ``phrase`` names the operator: its core holds one of ``own_cores`` or is held in one."""
    core = _name_core(phrase) if phrase else ""
    return bool(core) and any(core in name or name in core for name in own_cores)


def _name_core(name: str) -> str:
    """A company or app name without its legal form, spaces and case (Google LLC → google, 星河科技有限公司 → 星河科技)."""
    cues = clause_cues()
    return cues.legal_form_anywhere.sub("", simplified(name)).replace(" ", "").lower()


def names_company(phrase: str) -> bool:
    """Whether a company-like phrase of a sharing sentence names a company, not a kind of one (关联公司,
    第三方配送公司): after its last generic word (第三方, 合作方…) a legal form must follow (第三方北京星河配送有限公司)."""
    cues = clause_cues()
    if any(phrase.endswith(g) for g in cues.generic_company):
        return False
    cut = max((phrase.rfind(w) + len(w) for w in cues.generic_words if w in phrase), default=0)
    return not cut or cues.legal_form.search(phrase, cut) is not None


@lru_cache(maxsize=512)
def purpose_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence that states a purpose of processing (为了…, 用于…, in order to…)."""
    return tuple(span for span, _ in _sentence_matches(text, clause_cues().purpose))


def without_purpose(text: str, mentions: Iterable[Mention], types: Iterable[str] | None = None) -> list[Mention]:
    """For each data type that ``text`` declares collecting but never next to a stated purpose, the first
    declaring mention, in the order of ``types`` (by default the sensitive types of data/policy_clauses.json).

    A declaration is as :func:`declarations` has it. A type has a stated purpose when any affirmative mention of it
    sits in a sentence, or next to a non-blank sentence right before or after it, that states one
    (:func:`purpose_sentences`) or that states the feature being used (context cues: 当您使用…时, 在您申请借款时,
    when you apply for…), or under a lead-in line or a section heading that does: policies often give the purpose in
    the next sentence (我们会收集您的位置信息。该信息用于…), in a lead-in line (为了向您提供借款服务，您需要提供：) or
    in a heading (一、开户服务). Data named as what a stated use runs on (根据您提供的姓名、银行卡号…查询您的信用信息)
    have that use for a purpose; the rest of the sentence does not. A general type has the purpose stated for any of
    its kinds (biometric: 生物特征信息（面部信息） beside 在借款审批环节，我们将获取您的人脸图像).
    """
    cues = clause_cues()
    types = cues.sensitive_types if types is None else tuple(types)
    read = reading(text)
    ends, simple = read.sentence_ends, simplified(text)
    stated = {bisect_right(ends, start) for start, _ in purpose_sentences(text)}  # raw sentence indices
    mentions = tuple(mentions)
    wanted = set(types).union(*(cues.kinds_of.get(t, ()) for t in types))
    explained: set[str] = set()
    states: dict[int, bool] = {}  # raw sentence index -> states a purpose (purpose or context cue)
    sentences: dict[int, bool] = {}  # raw sentence index -> _explained

    def states_purpose(k: int) -> bool:
        found = states.get(k)
        if found is None:
            found = states[k] = k in stated or _feature_used(simple, *_span(simple, ends, k))
        return found

    inputs: dict[tuple[int, int], list[tuple[int, int]]] = {}  # a mention's sentence -> its input_use spans

    for m in mentions:
        if m.negated or m.type not in wanted or m.type in explained:
            continue
        spans = inputs.get((m.sent_start, m.sent_end))
        if spans is None:
            spans = inputs[m.sent_start, m.sent_end] = [
                u.span() for u in cues.input_use.finditer(simple, m.sent_start, m.sent_end)]
        if any(start <= m.start and m.end <= end for start, end in spans):
            explained.add(m.type)
            continue
        i = bisect_right(ends, m.sent_start)
        known = sentences.get(i)
        if known is None:
            known = sentences[i] = _explained(simple, ends, i, states_purpose, read.mentions)
        if known:
            explained.add(m.type)
    explained.update(general for general, kinds in cues.kinds_of.items() if explained.intersection(kinds))
    return list(declarations(text, mentions, [t for t in types if t not in explained]).values())


def declarations(text: str, mentions: Iterable[Mention], types: Iterable[str]) -> dict[str, Mention]:
    """The first mention of each of ``types`` that declares collecting it, by type (types never declared left out).

    A mention declares when it is affirmative, is not a channel (通过短信通知您, by SMS) and either its sentence has a
    collection cue (收集, 读取, 您需要提供; not 我们向您提供…服务) and is no definition (是指, 个人信息包括…), or its
    sentence has no collection cue and it is an item of a list whose lead-in line declares (我们会收集以下信息：). A
    short heading (通讯录权限) whose line or next line says the app does not use it does not declare.
    """
    wanted = set(types)
    ends, simple = reading(text).sentence_ends, simplified(text)
    found: dict[str, Mention] = {}
    headings: dict[str, Mention] = {}
    for m in mentions:
        if not m.negated and m.type in wanted and m.type not in found:
            declared = _declaration(simple, ends, m, bisect_right(ends, m.sent_start))
            if declared == _BELOW:
                headings.setdefault(m.type, m)
            elif declared:
                found[m.type] = m
    return {t: found.get(t) or headings[t] for t in types if t in found or t in headings}


def _declares(text: str, start: int, end: int) -> bool:
    """Whether the sentence [start, end) of the Simplified ``text`` has a collection cue and is no definition."""
    cues = clause_cues()
    return (cues.collection.pattern.search(text, start, end) is not None
            and not _defines(text, start, end))


def _defines(text: str, start: int, end: int) -> bool:
    """Whether the sentence is a definition (个人信息是指…, 个人信息包括…) or otherwise declares nothing of the app's
    own (您可以访问、更正…; 第三方支付机构可能需要收集…)."""
    cues = clause_cues()
    if cues.definition.pattern.search(text, start, end) is not None:
        return True
    if cues.not_declaring.search(text, start, end) is not None:
        return True
    m = _ENUMERATOR.match(text, start, end)
    return cues.definition_start.match(text, m.end() if m else start, end) is not None


def _declaration(text: str, ends: list[int], m: Mention, i: int) -> bool | int:
    """Whether the affirmative mention ``m`` (in raw sentence ``i``) declares collecting its data type: True, False,
    or _BELOW (truthy) for a heading that only names the data (2.2 位置信息) over lines that declare, a declaration
    that is a poorer quote than any other."""
    cues = clause_cues()
    if m.type in cues.channel_types and _channel(text, m):
        return False
    start, end = m.sent_start, m.sent_end
    if _defines(text, start, end) or _in_title(text, start, m.start):
        return False
    heading = _is_heading(text, start, end)
    if heading and _unused(text, ends, i, m):
        return False
    if cues.collection.pattern.search(text, start, end) is not None:
        return True
    if heading and _names_only(text, start, end, m) and _declared_below(text, ends, i):
        return _BELOW
    lead = _lead_in(text, ends, i)
    if lead < 0:
        return False
    start, end = _span(text, ends, lead)
    if _declares(text, start, end):
        return True
    if (cues.collection.pattern.search(text, start, end) is not None or _defines(text, start, end)
            or cues.back_reference.search(text, start, end) is None):
        return False
    before = _neighbour(text, ends, lead, -1)  # a lead-in that points back: 我们会请求您提供这些信息。这些信息包括：
    return before >= 0 and _declares(text, *_span(text, ends, before))


def _in_title(text: str, start: int, pos: int) -> bool:
    """Whether ``pos`` is inside a title in 《》 (《电话用户真实身份信息登记规定》) that opens after ``start``."""
    return text.rfind("《", start, pos) > text.rfind("》", start, pos)


def _channel(text: str, m: Mention) -> bool:
    """Whether the mention names a channel the app writes to (通过短信通知您, 短信、电话等方式, by SMS), not a
    permission (发送短信权限), or what the app reads only to fill in a verification code (读取验证码短信…填写)."""
    cues = clause_cues()
    if cues.channel_code.search(text, m.sent_start, m.sent_end) is not None:
        return True
    after_end = min(m.sent_end, m.end + _CHANNEL_REACH)
    if cues.channel_unless.search(text, m.start, min(after_end, m.end + 4)) is not None:
        return False
    before = text[max(m.sent_start, m.start - _CHANNEL_REACH):m.start]
    return (cues.channel_before.search(before) is not None
            or cues.channel_after.match(text, m.end, after_end) is not None)


def _unused(text: str, ends: list[int], i: int, m: Mention) -> bool:
    """Whether the rest of the heading line that names the data (通讯录权限：) or the next line says the app does not
    use it."""
    cues = clause_cues()
    if cues.not_used.search(text, m.end, m.sent_end) is not None:
        return True
    following = _neighbour(text, ends, i, 1)
    if following < 0:
        return False
    start, end = _span(text, ends, following)
    return cues.not_used.search(text, start, min(end, start + _NOT_USED_REACH)) is not None


def _names_only(text: str, start: int, end: int, m: Mention) -> bool:
    """Whether the heading [start, end) is little more than the mention (短信权限, (8)读取通讯录, Location:)."""
    number = _NUMBER.match(text, start, end)
    start, end = _words(text, number.end() if number else start, end)
    return end - start - (m.end - m.start) <= _HEADING_EXTRA and not any(c in text[start:end - 1] for c in "：:")


def _declared_below(text: str, ends: list[int], i: int) -> bool:
    """Whether one of the few lines under the heading line ``i`` (a permission table: 短信权限 / 调用权限的目的：…)
    declares, before the next numbered item."""
    j = i
    for _ in range(_MAX_BELOW):
        j = _neighbour(text, ends, j, 1)
        if j < 0:
            return False
        start, end = _span(text, ends, j)
        if _numbered(text, start, end):
            return False
        if _declares(text, start, end):
            return True
    return False


def _numbered(text: str, start: int, end: int) -> bool:
    """Whether the sentence starts with an item number (1. / （2） / 三、)."""
    m = _NUMBER.match(text, start, end)
    return m is not None


def _explained(text: str, ends: list[int], i: int, states_purpose: Callable[[int], bool],
               mentions: tuple[Mention, ...]) -> bool:
    """Whether raw sentence ``i`` has a stated purpose (``states_purpose``: a purpose or a context cue) in itself or a
    neighbour that is no sibling item (:func:`_sibling`), in the lead-in of its list, or in the heading of its section
    (also a feature word of heading_feature)."""
    if states_purpose(i):
        return True
    item, lead = _numbered(text, *_span(text, ends, i)), _lead_in(text, ends, i)
    for k in (_neighbour(text, ends, i, -1), _neighbour(text, ends, i, 1)):
        if k < 0:
            continue
        if not _sibling(text, ends, k, item, lead, mentions) and states_purpose(k):
            return True
    if lead >= 0 and states_purpose(lead):
        return True
    if _feature_heading(text, *_span(text, ends, i), mentions):  # the mention's own line: 实名认证、活体检测
        return True
    head = _heading(text, ends, i)
    return head >= 0 and (states_purpose(head) or _feature_heading(text, *_span(text, ends, head), mentions))


def _sibling(text: str, ends: list[int], k: int, numbered: bool, lead: int, mentions: tuple[Mention, ...]) -> bool:
    """Whether raw sentence ``k``, next to an item (``numbered``; ``lead``: the lead-in of its list, -1: none), is a
    sibling item whose purpose is its own: another numbered item, or another item of the same list that names data
    of its own (位置信息，指您开启定位功能…时 beside 您曾使用的移动应用的信息). A line of the item's own purpose in the list
    (使用目的：…) is no sibling."""
    start, end = _span(text, ends, k)
    if numbered and _numbered(text, start, end):
        return True
    if lead < 0 or k == lead or _lead_in(text, ends, k) != lead:
        return False
    first = bisect_left(mentions, start, key=_START)
    return first < len(mentions) and mentions[first].start < end


def _feature_used(text: str, start: int, end: int) -> bool:
    """Whether [start, end) states the feature being used (在您申请借款时), not only the use of the service at large
    (当您使用我们的服务时: that is no purpose)."""
    cues = clause_cues()
    for pattern in (cues.context.zh, cues.context.en):
        if pattern is cues.context.en and _LATIN.search(text, start, end) is None:
            break
        if any(cues.generic_context.match(text, m.start(), end) is None for m in pattern.finditer(text, start, end)):
            return True
    return False


def _feature_heading(text: str, start: int, end: int, mentions: tuple[Mention, ...]) -> bool:
    """Whether [start, end) is a heading that names a feature (一、开户服务): a feature word of heading_feature that is
    not part of a data type's name (交易记录, 支付信息 are data, not features) nor of the service at large
    (您使用服务时我们可能收集如下信息)."""
    if not _is_heading(text, start, end):
        return False
    cues = clause_cues()
    first = bisect_left(mentions, start, key=_START)
    names = [(n.start, n.end) for n in mentions[first:first + _MAX_NAMES] if n.start < end]
    names += [g.span() for g in cues.generic_context.finditer(text, start, end)]
    return any(not any(s < f.end() and f.start() < e for s, e in names)
               for f in cues.heading_feature.finditer(text, start, end))


def _lead_in(text: str, ends: list[int], i: int) -> int:
    """The raw index of the lead-in line of the list whose item is raw sentence ``i`` (-1: none).

    Walking back over the items before it (ending with ；, with no punctuation, or numbered), the lead-in is the first
    line that ends open (：, ，, 的, 以下…); a sentence that ends closed (。) and is not numbered ends the walk.
    """
    cues = clause_cues()
    j = i
    for _ in range(_MAX_ITEMS):
        j = _neighbour(text, ends, j, -1)
        if j < 0:
            return -1
        start, end = _words(text, *_span(text, ends, j))
        if start >= end:
            continue
        if cues.lead_in.search(text[start:end]) is not None:
            return j
        if text[end - 1] in _FINAL and not _numbered(text, start, end):
            return -1
    return -1


def _heading(text: str, ends: list[int], i: int) -> int:
    """The raw index of the heading of the section raw sentence ``i`` is in, within a few sentences (-1: none)."""
    j = i
    for _ in range(_MAX_SECTION):
        j = _neighbour(text, ends, j, -1)
        if j < 0:
            return -1
        start, end = _span(text, ends, j)
        if _is_heading(text, start, end) and (j == 0 or text[ends[j - 1] - 1] == "\n") and text[ends[j] - 1] == "\n":
            return j
    return -1


def _is_heading(text: str, start: int, end: int) -> bool:
    """A short line of words with no sentence punctuation inside or at its end (一、开户服务, **Account opening**)."""
    start, end = _words(text, start, end)
    if start >= end or end - start > (_HEADING_EN if text[start:end].isascii() else _HEADING_ZH):
        return False
    body = text[start:end]
    return body[-1] not in _CLOSED and not any(c in body for c in "，,。；;！!？?")


def _words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without the markup and spaces around it."""
    while start < end and text[start] in _MARKUP:
        start += 1
    while end > start and text[end - 1] in _MARKUP:
        end -= 1
    return start, end


def _span(text: str, ends: list[int], i: int) -> tuple[int, int]:
    """Raw sentence ``i`` without the whitespace around it."""
    return _strip(text, ends[i - 1] if i else 0, ends[i])


def _neighbour(text: str, ends: list[int], i: int, step: int) -> int:
    """Index of the nearest raw sentence before (step -1) or after (step 1) raw sentence ``i`` that is not blank
    (nor only markup: ``**``, ``_``)."""
    i += step
    while 0 <= i < len(ends):
        start, end = _words(text, ends[i - 1] if i else 0, ends[i])
        if start < end:
            return i
        i += step
    return -1


def cache_clear() -> None:
    """Forget the per-text answers (for timing)."""
    for cached in (clause_sentences, purpose_sentences):
        cached.cache_clear()


# -- searching only where a prefix starts ------------------------------------------------------------------------
def _search(text: str, cue: Cue, start: int, end: int) -> re.Match | None:
    """``cue.pattern.search(text, start, end)``, trying only the positions where one of its prefixes starts."""
    markers = reading(text).markers
    text = simplified(text)
    if cue.prefixes is None or markers is None:
        return cue.pattern.search(text, start, end)
    positions = markers[cue.name]
    match = cue.pattern.match
    for i in range(bisect_left(positions, start), len(positions)):
        pos = positions[i]
        if pos >= end:
            break
        m = match(text, pos, end)
        if m is not None:
            return m
    return None


def _sentence_matches(text: str, cue: Cue) -> Iterator[tuple[tuple[int, int], re.Match]]:
    """Each sentence of ``text`` (as :func:`~analyzers.policy_text.sentence_spans` has them) where ``cue`` matches,
    with its first match (``cue.pattern.search(text, start, end)``)."""
    read = reading(text)
    text = simplified(text)
    if cue.prefixes is None or read.markers is None:
        for start, end in sentence_spans(text):
            m = cue.pattern.search(text, start, end)
            if m is not None:
                yield (start, end), m
        return
    ends, match = read.sentence_ends, cue.pattern.match
    sentence, index, found = (0, 0), -1, -1
    for pos in read.markers[cue.name]:  # in text order: the first match in a sentence is its search result
        i = bisect_right(ends, pos)
        if i == found:
            continue
        if i != index:
            sentence, index = _strip(text, ends[i - 1] if i else 0, ends[i]), i
        if sentence[0] <= pos < sentence[1]:
            m = match(text, pos, sentence[1])
            if m is not None:
                found = i
                yield sentence, m


# -- literal prefixes of a regular expression ------------------------------------------------------------------
def _cue_prefixes(patterns: list[str]) -> frozenset[str] | None:
    """Case-folded literal strings one of which starts every match of one of ``patterns`` (None: unknown).

    Only prefixes whose letters are ASCII (or uncased, as Chinese is) are used: case-insensitive matching of
    other letters knows equivalences that lower-casing does not.
    """
    found: set[str] = set()
    for pattern in patterns:
        prefixes = _prefixes(list(sre_parse.parse(pattern, _FLAGS)))
        if prefixes is None:
            return None
        for prefix in prefixes:
            if any(not c.isascii() and c.lower() != c.upper() for c in prefix):
                return None
            found.add(prefix.lower())
    shortest: list[str] = []
    for prefix in sorted(found, key=len):  # a prefix that starts with another one adds no position
        if not any(prefix.startswith(p) for p in shortest):
            shortest.append(prefix)
    return frozenset(shortest)


def _prefixes(items: list) -> set[str] | None:
    """Literal strings one of which starts every match of the parsed sequence ``items`` (None: none known)."""
    out = {""}
    for op, av in items:
        whole = _strings(op, av)
        heads = whole if whole is not None else _head_strings(op, av)
        if heads is None:
            break
        grown = {a + b for a in out for b in heads}
        if len(grown) > _MAX_PREFIXES:
            break
        out = grown
        if whole is None:  # only the item's own prefixes are known: the literal prefix ends there
            break
    return None if "" in out else out


def _head_strings(op, av) -> set[str] | None:
    """Prefixes of a group or an alternation that is not a small finite set of strings."""
    if op is sre.SUBPATTERN and not av[1] and not av[2]:
        return _prefixes(av[3])
    if op is sre.BRANCH:
        return _union(av[1], _prefixes)
    return None


def _union(alternatives, strings_of) -> set[str] | None:
    """The union of ``strings_of`` each alternative (None when one of them is None)."""
    out: set[str] = set()
    for alternative in alternatives:
        strings = strings_of(alternative)
        if strings is None:
            return None
        out |= strings
    return out


def _strings(op, av) -> set[str] | None:
    """Every string one parsed item can match, when that is a small finite set (zero-width items match "")."""
    if op in _ZERO_WIDTH:
        return {""}
    if op is sre.LITERAL:
        return {chr(av)}
    if op is sre.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is sre.LITERAL:
                chars.add(chr(value))
            elif kind is sre.RANGE and value[1] - value[0] < _MAX_CLASS:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return chars if len(chars) <= _MAX_CLASS else None
    if op is sre.SUBPATTERN:
        return None if av[1] or av[2] else _sequence_strings(av[3])
    if op is sre.BRANCH:
        out = _union(av[1], _sequence_strings)
        return out if out is not None and len(out) <= _MAX_PREFIXES else None
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, item = av
        strings = _sequence_strings(item) if high <= 4 else None
        if strings is None:
            return None
        out, repeated = set(), {""}
        for count in range(high + 1):
            if count >= low:
                out |= repeated
            repeated = {a + b for a in repeated for b in strings}
            if len(repeated) > _MAX_PREFIXES:
                return None
        return out
    return None


def _sequence_strings(items) -> set[str] | None:
    out = {""}
    for op, av in items:
        strings = _strings(op, av)
        if strings is None:
            return None
        out = {a + b for a in out for b in strings}
        if len(out) > _MAX_PREFIXES:
            return None
    return out
