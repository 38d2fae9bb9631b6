"""The rule table. Each rule is a small function registered with :func:`rule`.

A rule reads a :class:`Context` (the app, its finance type, its policy's mentions) and
yields :class:`~finmon.model.Evidence`; the table turns each into a frozen Finding with the
rule's id, severity, confidence, title and regulation. The docstring's first paragraph is
the Chinese text shown in reports, the rest its English version. Detection data (lexicon,
permission lists, scopes, citations) lives in ``data/``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable, Iterator

from finmon.model import (
    CONFIDENCES,
    POLICY_NONE,
    POLICY_NOT_FOUND,
    POLICY_OK,
    SEVERITIES,
    ApkInfo,
    AppSnapshot,
    Evidence,
    Finding,
    Listing,
)
from finmon.settings import FINMON_MIN_TARGET_SDK

from .clauses import (clause_sentences, declarations, has_clause, has_contact_channel, names_recipient, names_sdk,
                      sharing_sentences, without_purpose)
from .finance import FinanceType, finance_data, finance_types
from .fundraising import fundraising_data, scan_listing_text
from .policy_text import Lexicon, Mention, declared_types, lexicon, load_json, scan, simplified
from .registry import Registry, developer_names, normalise_developer
from .sdks import sdk_catalog

__all__ = ["Context", "RULES", "Rule", "not_applied", "rule", "rules_table"]

ANDROID_PERMISSION = "android.permission."


@dataclass(frozen=True)
class Rule:
    """One row of the rule table."""

    id: str
    severity: str
    confidence: str
    title: str
    title_en: str
    regulation: tuple[str, ...]  # reference ids of data/regulations.json
    check: Callable[["Context"], Iterator[Evidence]]
    uses_finance_type: bool = False  # a doubtful finance type lowers the confidence
    cites_scope: bool = False  # also cite the finance type's necessary-scope article
    requires: str | None = None  # an input the caller must supply ("registry"); without it the rule is not applied
    severity_by_type: tuple[tuple[str, str], ...] = ()  # (finance type, severity) overriding ``severity``
    # evidence key -> reference ids, replacing ``regulation`` for findings with that key
    regulation_by_key: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def family(self) -> str:
        return self.id[0]

    @property
    def description(self) -> str:
        return _paragraphs(self.check)[0]

    @property
    def description_en(self) -> str:
        return "\n\n".join(_paragraphs(self.check)[1:])

    def findings(self, ctx: "Context") -> list[Finding]:
        """Run the rule on one app."""
        out = []
        for evidence in self.check(ctx):
            out.append(Finding(
                rule_id=self.id, severity=self.severity_for(ctx), confidence=self._confidence(ctx), app_key=ctx.app.key,
                title=self.title, evidence=evidence, regulation=self._regulation(ctx, evidence=evidence),
            ))
        return out

    def severity_for(self, ctx: "Context") -> str:
        return dict(self.severity_by_type).get(ctx.finance_type, self.severity)

    def _confidence(self, ctx: "Context") -> str:
        trusted = float(finance_data()["classifier"].get("trusted_confidence", 0.6))
        if self.uses_finance_type and ctx.finance_confidence < trusted:
            return CONFIDENCES[min(CONFIDENCES.index(self.confidence) + 1, len(CONFIDENCES) - 1)]
        return self.confidence

    def _regulation(self, ctx: "Context", lang: str = "zh", evidence: Evidence | None = None) -> str:
        ids = list(dict(self.regulation_by_key).get(evidence.key, self.regulation) if evidence else self.regulation)
        if self.cites_scope and ctx.finance.regulation:
            ids.insert(0, ctx.finance.regulation)
        return regulation_text(ids, lang)


RULES: list[Rule] = []
FAMILY_NAMES = {"P": "permissions", "C": "collection", "D": "disclosure", "S": "third-party SDKs",
                "V": "vulnerabilities", "R": "registration and marketing"}


def rule(rule_id: str, *, severity: str, confidence: str, title: str, title_en: str, regulation: tuple[str, ...],
         uses_finance_type: bool = False, cites_scope: bool = False, requires: str | None = None,
         severity_by_type: dict[str, str] | None = None, regulation_by_key: dict[str, tuple[str, ...]] | None = None):
    """Register the decorated function as a rule (table order = registration order)."""
    by_type = tuple(sorted((severity_by_type or {}).items()))
    if severity not in SEVERITIES or confidence not in CONFIDENCES or any(s not in SEVERITIES for _, s in by_type):
        raise ValueError(f"{rule_id}: bad severity/confidence {severity}/{confidence}")
    if any(r.id == rule_id for r in RULES):
        raise ValueError(f"duplicate rule id {rule_id}")
    by_key = tuple(sorted((k, tuple(v)) for k, v in (regulation_by_key or {}).items()))
    unknown = (set(regulation) | {i for _, ids in by_key for i in ids}) - set(_references())
    if unknown:
        raise ValueError(f"{rule_id}: unknown regulation references {sorted(unknown)}")

    def register(func: Callable[["Context"], Iterator[Evidence]]):
        if not (func.__doc__ or "").strip():
            raise ValueError(f"{rule_id}: a rule needs a docstring")
        RULES.append(Rule(rule_id, severity, confidence, title, title_en, tuple(regulation), func,
                          uses_finance_type, cites_scope, requires, by_type, by_key))
        return func

    return register


def rules_table() -> list[dict]:
    """The rule table as plain dicts, for the CLI and the store."""
    return [
        {
            "id": r.id, "family": r.family, "family_name": FAMILY_NAMES.get(r.family, ""), "severity": r.severity,
            "confidence": r.confidence,
            "title": r.title, "title_en": r.title_en, "description": r.description,
            "description_en": r.description_en, "regulation": regulation_text(r.regulation, "zh"),
            "regulation_en": regulation_text(r.regulation, "en"), "requires": r.requires or "",
            "severity_by_type": dict(r.severity_by_type),
        }
        for r in RULES
    ]


REQUIREMENTS = {
    "registry": ("未配置登记名单（FINMON_REGISTRY 为空）", "no registry configured (FINMON_REGISTRY is empty)"),
}


def not_applied(registry: Registry | None = None) -> dict[str, tuple[str, str]]:
    """Rules that an analysis with these inputs does not apply: rule id -> (reason zh, reason en)."""
    given = {"registry": registry is not None}
    return {r.id: REQUIREMENTS[r.requires] for r in RULES if r.requires and not given[r.requires]}


def regulation_text(ids, lang: str = "zh") -> str:
    """Citations of some reference ids, joined."""
    refs = _references()
    return ("；" if lang == "zh" else "; ").join(refs[i][lang] for i in ids)


@lru_cache(maxsize=1)
def _references() -> dict[str, dict[str, str]]:
    return load_json("regulations.json")["references"]


@lru_cache(maxsize=1)
def _permissions() -> dict:
    data = load_json("permissions.json")
    return {"dangerous": frozenset(data["dangerous"]), "loan_forbidden": frozenset(data["personal_loan_forbidden"])}


def _paragraphs(func: Callable) -> list[str]:
    return [p.replace("\n", " ") for p in inspect.cleandoc(func.__doc__ or "").split("\n\n")]


class Context:
    """What a rule may look at: the app, its finance type and its policy's mentions."""

    def __init__(self, app: AppSnapshot, finance_type: str, finance_confidence: float,
                 registry: Registry | None = None):
        self.app = app
        self.finance_type = finance_type
        self.finance_confidence = finance_confidence
        self.registry = registry  # None: not supplied, rules that need it yield nothing
        self.finance: FinanceType = finance_types()[finance_type]
        self.lexicon: Lexicon = lexicon()

    @cached_property
    def permissions(self) -> tuple[str, ...]:
        """The app's Android permissions (store listings and APK manifest), full names, sorted (none for iOS)."""
        if self.app.platform != "android":
            return ()
        listed = {p if "." in p else ANDROID_PERMISSION + p for p in self.app.permissions}
        return tuple(sorted(listed | set(self.apk.permissions if self.apk else ())))

    @property
    def apk(self) -> ApkInfo | None:
        """The app's inspected APK, if one was fetched."""
        return self.app.apk if self.app.platform == "android" else None

    @property
    def policy_ok(self) -> bool:
        return self.app.policy_status == POLICY_OK and self.app.policy is not None

    @cached_property
    def mentions(self) -> tuple[Mention, ...]:
        return scan(self.app.policy.text) if self.policy_ok else ()

    @cached_property
    def declared(self) -> frozenset[str]:
        return declared_types(self.mentions)

    @cached_property
    def data_safety_listing(self) -> Listing | None:
        """The first of the app's listings that carries a store's Data safety form (Google Play), if any."""
        return next((lst for lst in self.app.listings if lst.data_safety is not None), None)

    @cached_property
    def data_safety_collected(self) -> frozenset[tuple[str, str]]:
        """The (category, data type) pairs, case-folded, that the Data safety form declares collected."""
        listing = self.data_safety_listing
        entries = (listing.data_safety.get("collected") or ()) if listing is not None else ()
        return frozenset((str(e.get("category", "")).casefold(), str(e.get("type", "")).casefold()) for e in entries)

    def data_safety_declares(self, type_id: str) -> bool:
        """Whether the Data safety form declares collecting something that covers our data type ``type_id``."""
        return bool(self.data_safety_collected & _data_safety_types().get(type_id, frozenset()))

    def data_type(self, permission: str) -> str | None:
        return self.lexicon.by_permission.get(permission)

    def is_dangerous(self, permission: str) -> bool:
        return permission in _permissions()["dangerous"]

    def loan_forbidden(self, permission: str) -> bool:
        """True when P101 flags this permission for this app."""
        return self.finance_type == "lending" and permission in _permissions()["loan_forbidden"]


# --- P1xx permissions -------------------------------------------------------------


@rule("P101", severity="high", confidence="high", uses_finance_type=True,
      title="借贷类应用申请应用商店个人贷款政策禁止的权限",
      title_en="Lending app requests a permission that app-store personal-loan policies forbid",
      regulation=("store_personal_loans", "store_sms_call_log", "identification_2019_4"))
def lending_forbidden_permission(ctx: Context) -> Iterator[Evidence]:
    """网络借贷类应用申请了应用商店个人贷款政策禁止的敏感权限（通讯录、通话记录、短信、精确位置、外部存储、照片和视频）。这类权限曾被用于暴力催收和骚扰借款人的联系人，且不属于网络借贷的必要个人信息。

    An online-lending app requests a sensitive permission that app-store personal-loan policies forbid (contacts, call logs, SMS, precise location, external storage, photos and videos). Such access has been used for abusive debt collection and harassment of borrowers' contacts, and none of it is necessary information for lending.
    """
    for perm in ctx.permissions:
        if ctx.loan_forbidden(perm):
            yield Evidence(kind="permission", key=perm, text=perm, detail=ctx.data_type(perm) or "")


@rule("P102", severity="medium", confidence="high",
      title="金融应用申请与金融服务无关的敏感权限",
      title_en="Finance app requests a dangerous permission unrelated to finance",
      regulation=("identification_2019_4", "pipl_6", "necessary_2021"))
def unnecessary_dangerous_permission(ctx: Context) -> Iterator[Evidence]:
    """金融应用申请了一项危险权限，其可收集的数据（通讯录、通话记录、短信、位置、日历、麦克风）不属于任何金融类应用基本功能的必要个人信息。已由 P101 标记的权限不重复报告。

    A finance app requests a dangerous permission whose data (contacts, call logs, SMS, location, calendar, microphone) is necessary for the basic service of no finance app type. Permissions already flagged by P101 are not repeated.
    """
    never = set(finance_data()["never_necessary"])
    for perm in ctx.permissions:
        if ctx.is_dangerous(perm) and ctx.data_type(perm) in never and not ctx.loan_forbidden(perm):
            yield Evidence(kind="permission", key=perm, text=perm, detail=ctx.data_type(perm) or "")


# --- C2xx collection ----------------------------------------------------------------


@rule("C201", severity="high", confidence="high",
      title="未提供隐私政策",
      title_en="No privacy policy",
      regulation=("identification_2019_1", "pipl_17"))
def no_privacy_policy(ctx: Context) -> Iterator[Evidence]:
    """应用没有可访问的隐私政策：所有应用商店页面均未给出隐私政策链接，或链接返回 404/410。链接暂时无法访问（5xx、超时）不视为缺失。

    The app has no reachable privacy policy: no store listing names a policy URL, or the URL answers 404/410. A policy that is only unavailable (5xx, timeout) is not treated as missing.
    """
    status = ctx.app.policy_status
    if status == POLICY_NONE:
        yield Evidence(kind="absence", key="policy", text="应用商店页面未提供隐私政策链接", url=None, detail=status)
    elif status == POLICY_NOT_FOUND:
        yield Evidence(kind="absence", key="policy", text="隐私政策链接返回 404/410", url=ctx.app.policy_url,
                       detail=status)


@rule("C202", severity="high", confidence="high", uses_finance_type=True, cites_scope=True,
      title="隐私政策声明收集超出必要范围的个人信息",
      title_en="Policy declares collecting personal information beyond the necessary scope",
      regulation=("identification_2019_4", "pipl_6", "jrt_0171_2020"))
def beyond_necessary_scope(ctx: Context) -> Iterator[Evidence]:
    """隐私政策声明收集通讯录、通话记录、短信、位置信息或已安装应用列表，而这些信息不在该类金融应用（网络支付、网络借贷、投资理财、证券、手机银行）的必要个人信息范围内。声明指含“收集”“获取”“读取”“您需要提供”等的肯定句（或以“我们会收集以下信息：”引出的列表项），不包括定义句（“个人信息包括……行踪轨迹等”“敏感个人信息是指……”）、作为通知渠道的提及（“通过短信通知您”）和注明不使用的权限标题。证据为第一处这样的声明原句；政策没有这样的声明则不报告。

    The privacy policy declares collecting contacts, call logs, SMS, location or the list of installed apps, none of which is within the necessary personal information of the app's finance type (payment, lending, investment, securities, mobile banking). A declaration is an affirmative sentence with a collection cue ("collect", "obtain", "read", "you need to provide"), or an item of a list whose lead-in says so ("we collect the following:"); a definition ("personal information includes ... whereabouts"), a mention of a channel ("we notify you by SMS") and a permission heading marked as unused are not. The evidence is the first such declaration; a policy without one gets no finding.
    """
    scope = ctx.finance.necessary
    if scope is None or not ctx.policy_ok:
        return
    text = ctx.app.policy.text
    watched = [t for t in finance_data()["over_collection"] if t not in scope]
    declared = declarations(text, ctx.mentions, watched)
    for type_id in watched:
        first = declared.get(type_id)
        if first is not None:
            yield Evidence(kind="quote", key=type_id, text=text[first.sent_start:first.sent_end],
                           start=first.sent_start, end=first.sent_end, url=ctx.app.policy.url,
                           detail=text[first.start:first.end])


@rule("C203", severity="medium", confidence="medium",
      title="隐私政策未提供撤回同意的方式",
      title_en="Policy gives no way to withdraw consent",
      regulation=("identification_2019_3", "pipl_15"))
def no_consent_withdrawal(ctx: Context) -> Iterator[Evidence]:
    """成功获取的隐私政策中没有任何撤回同意的方式（如“撤回同意”“撤回授权”“取消授权”“关闭权限”）。仅依据文本判断：政策未写明不等于应用内确无此功能。

    The fetched privacy policy states no way to withdraw consent (such as "withdraw your consent", "revoke the authorisation", "turn off the permission"). Judged from the text only: a policy that does not say so does not prove the app lacks the function.
    """
    yield from _absent_clause(ctx, "consent_withdrawal", "隐私政策未说明撤回同意的方式")


@rule("C204", severity="medium", confidence="medium",
      title="隐私政策未提供注销账号、删除或更正个人信息的方式",
      title_en="Policy gives no way to delete the account or personal information, or to correct it",
      regulation=("identification_2019_6", "pipl_46", "pipl_47"))
def no_deletion_or_correction(ctx: Context) -> Iterator[Evidence]:
    """成功获取的隐私政策既未说明如何注销账号或删除个人信息，也未说明如何更正个人信息（如“注销账号”“删除个人信息”“更正”“更改”）。运营者的处置权（“本公司有权注销用户账号”）、用户的义务（“须及时更新”）和监护人对未成年人信息的权利（“要求我们删除该青少年的个人信息”）都不是用户对自己信息的途径。仅依据文本判断。

    The fetched privacy policy says neither how to delete the account or personal information nor how to correct it (such as "delete your account", "delete your personal information", "correct"). The operator's power ("we may close your account"), the user's duty ("you must keep it current") and a guardian's right over a child's data ("ask us to delete the child's information") are no route the user has for their own data. Judged from the text only.
    """
    yield from _absent_clause(ctx, "deletion_correction", "隐私政策未说明注销账号、删除或更正个人信息的方式")


@rule("C205", severity="medium", confidence="medium",
      title="隐私政策未公布投诉、举报或联系渠道",
      title_en="Policy publishes no complaint or contact channel",
      regulation=("identification_2019_6", "pipl_50"))
def no_complaint_channel(ctx: Context) -> Iterator[Evidence]:
    """成功获取的隐私政策没有公布投诉、举报或联系渠道：没有“投诉”“举报”“联系我们”等说明，或这些说明前后 300 字以内没有电子邮箱、电话、地址等可用的联系方式和个人信息、本政策或投诉等字样；后面紧跟号码或邮箱的客服热线、联系电话本身就是渠道，网页页脚（版权、ICP备案所在处）的除外。

    The fetched privacy policy publishes no complaint, reporting or contact channel: it has no "complaints" or "contact us" passage, or no usable contact detail (an e-mail address, a phone number or a postal address) and no word of personal information, the policy or complaints within 300 characters of one; a customer-service line or contact phone followed by its number or e-mail address is a channel by itself, unless it is in the web page's footer (by the copyright or ICP filing line).
    """
    if ctx.policy_ok and not has_contact_channel(ctx.app.policy.text):
        yield Evidence(kind="absence", key="complaint_channel", text="隐私政策未公布投诉、举报或联系方式",
                       url=ctx.app.policy.url)


@rule("C206", severity="medium", confidence="medium",
      title="隐私政策声明收集敏感个人信息但未说明目的",
      title_en="Policy declares collecting sensitive personal information without stating a purpose",
      regulation=("identification_2019_2", "pipl_17_purpose"))
def sensitive_without_purpose(ctx: Context) -> Iterator[Evidence]:
    """隐私政策声明收集敏感个人信息（身份证件、人脸等生物识别信息、银行卡、征信、交易和财产信息、健康信息、位置信息、通讯录、通话记录、短信、已安装应用列表），却没有说明目的：该信息出现在收集声明中（含“收集”“获取”“您需要提供”等的肯定句，或以“我们会收集以下信息：”引出的列表项；“……是指”等定义句、“我们向您提供……服务”、作为通知渠道的短信不算），而提及该信息的任何一句、其前后相邻的句子（列表中另一项自有其信息的除外）、所在列表的引导句和所在段落的标题都没有说明目的：既没有“为了”“用于”“以便”“出于……目的”等，也没有以所使用的功能说明目的（“当您使用预约开户服务时”“在您申请借款时”“为完成实名认证”“一、开户服务”；泛指的“当您使用我们的服务时”不算）；生物识别信息等总称以其具体种类（人脸）所说明的目的为目的。每类信息一条，证据为第一处声明收集的原句。仅依据文本判断。

    The privacy policy declares collecting sensitive personal information (identity documents, face and other biometrics, bank cards, credit, transaction and asset records, health, location, contacts, call logs, SMS, the list of installed apps) without stating why: the data is named in a collection statement (an affirmative sentence with a collection cue such as "collect", "obtain", "you need to provide", or an item of a list led in by "we collect the following:"; a definition such as "... means ...", "we provide you with services" and SMS as a notification channel do not count), yet no sentence that names it, nor the sentence right before or after one (unless that is another item of its list, naming data of its own), nor the lead-in of its list or the heading of its section states a purpose: neither a purpose cue ("in order to", "used for", "for the purpose of") nor the feature being used ("when you apply for a loan", "to open an account", a heading such as "Account opening"; "when you use our services" at large is none); a general type (biometrics) has the purpose stated for its kind (face). One finding per data type; the evidence is the first sentence that declares collecting it. Judged from the text only.
    """
    if not ctx.policy_ok:
        return
    text = ctx.app.policy.text
    for m in without_purpose(text, ctx.mentions):
        yield Evidence(kind="quote", key=m.type, text=text[m.sent_start:m.sent_end], start=m.sent_start,
                       end=m.sent_end, url=ctx.app.policy.url, detail=text[m.start:m.end])


@rule("C207", severity="medium", confidence="medium",
      title="隐私政策以继续使用、默认勾选等非明示方式视为用户同意",
      title_en="Policy treats continued use or a default choice as consent",
      regulation=("identification_2019_3", "pipl_14"))
def implied_consent(ctx: Context) -> Iterator[Evidence]:
    """隐私政策把使用或继续使用应用、默认勾选等非明示的方式当作用户同意（如“继续使用即视为您同意本政策”“若您继续使用我们的服务，则视为您接受更新后的政策”“默认勾选同意隐私政策”），包括对政策更新的同意。同意应当由用户在充分知情的前提下自愿、明确作出，政策变更涉及处理目的、方式和种类的应当重新取得同意。否定句（“我们不会以默认勾选的方式……”）不算；用户主动勾选或点击同意（“您勾选同意即视为您已同意本政策”“点击同意即表示”）是明示的行为，也不算，除非同一句把使用应用当作另一种同意方式（“点击同意或继续使用即视为”）。证据为第一处这样的原句。

    The privacy policy treats using or continuing to use the app, or a default choice, as the user's consent ("by continuing to use the app you agree to this policy", "if you continue to use our services after the update, you accept the updated policy", "the consent box is ticked by default"), including consent to policy updates. Consent must be informed, voluntary and explicit, and a change of purpose, method or kind of data needs new consent. A negated sentence ("we will not tick the box for you") does not count, nor does the user's own explicit act ("by ticking the box you agree", "clicking 'Agree' means"), unless the same sentence also takes using the app as consent ("by clicking agree or continuing to use"). The evidence is the first such sentence.
    """
    if not ctx.policy_ok:
        return
    text = ctx.app.policy.text
    sentences = clause_sentences(text, "implied_consent")
    if sentences:
        start, end = sentences[0]
        yield Evidence(kind="quote", key="implied_consent", text=text[start:end], start=start, end=end,
                       url=ctx.app.policy.url)


def _absent_clause(ctx: Context, clause_id: str, text: str) -> Iterator[Evidence]:
    if ctx.policy_ok and not has_clause(ctx.app.policy.text, clause_id):
        yield Evidence(kind="absence", key=clause_id, text=text, url=ctx.app.policy.url)


# --- D3xx disclosure ----------------------------------------------------------------


@rule("D301", severity="medium", confidence="high",
      title="申请的权限在隐私政策中未声明",
      title_en="Permission requested but its data type is not declared in the policy",
      regulation=("identification_2019_2", "pipl_17"))
def undeclared_permission(ctx: Context) -> Iterator[Evidence]:
    """应用申请了危险权限，但隐私政策从未肯定性地提及该权限所涉及的个人信息类型（否定句如“我们不会收集您的通讯录”不算声明）。仅在成功获取隐私政策时检查。

    The app requests a dangerous permission but its privacy policy never affirmatively mentions the data type the permission reaches (a negated sentence such as "we do not collect your contacts" is not a declaration). Checked only when the policy was fetched.
    """
    if not ctx.policy_ok:
        return
    by_type: dict[str, list[str]] = {}
    for perm in ctx.permissions:
        type_id = ctx.data_type(perm)
        if type_id and ctx.is_dangerous(perm):
            by_type.setdefault(type_id, []).append(perm)
    for type_id in sorted(by_type):
        if type_id not in ctx.declared:
            yield Evidence(kind="permission", key=type_id, text=", ".join(by_type[type_id]),
                           url=ctx.app.policy.url, detail=type_id)


@rule("D302", severity="medium", confidence="medium",
      title="隐私政策声明向第三方共享个人信息但未列明接收方",
      title_en="Policy says personal information is shared with third parties without naming any recipient",
      regulation=("identification_2019_5", "pipl_23"))
def unnamed_sharing_recipients(ctx: Context) -> Iterator[Evidence]:
    """隐私政策肯定性地声明向第三方共享、提供或委托处理个人信息（否定句如“我们不会与第三方共享”不算），但全文未列明任何接收方：共享语句中没有公司名称（包括政策为某公司定义的简称；应用自身及其开发者的名称不算接收方），全文也没有 SDK 名称（SDK 表中的名称）或第三方共享清单、SDK 清单。仅以链接或书名引用的清单（“请见《第三方信息共享清单》”“点击查看SDK详情”）不在政策文本之内，不算列明，除非注明是本政策的附件；此时请核对该清单。微信、QQ、支付宝、银联等既是 SDK 也是登录或支付方式（或应用自身名称），只有在 SDK 或第三方清单中（附近有“SDK”、提供方或其公司名称）才算列明接收方。证据为第一处共享声明的原句。

    The privacy policy affirmatively says personal information is shared with, provided to or entrusted to third parties (a negated sentence such as "we do not share with third parties" does not count), yet names no recipient: no company name in the sharing sentences (a short name the policy defines for a company counts; the app's own name and its developer's are no recipient) and no SDK name (as the SDK table knows them) or list of third parties (third-party sharing list, SDK list) anywhere. A list the policy only links to or refers to by title ("see our Third-party Sharing List", "click to view SDK details") is not in its text and names no one, unless it is called an annex of the policy; the reader should then check that list. WeChat, QQ, Alipay, UnionPay and the like are SDKs but also login or payment methods (or the app's own name): they name a recipient only in an SDK or third-party list ("SDK", a provider or its company name nearby). The evidence is the first sharing sentence.
    """
    if not ctx.policy_ok:
        return
    text = ctx.app.policy.text
    sentences = sharing_sentences(text)
    own = (ctx.app.name, ctx.app.developer, ctx.app.legal_entity)
    if sentences and not names_recipient(text, sentences, own) and names_sdk(text, own) is None:
        start, end = sentences[0]
        yield Evidence(kind="quote", key="third_party_sharing", text=text[start:end], start=start, end=end,
                       url=ctx.app.policy.url)


@rule("D303", severity="medium", confidence="medium",
      title="嵌入的 SDK 收集的个人信息类型在隐私政策中未声明",
      title_en="An embedded SDK collects a data type the policy never declares",
      regulation=("identification_2019_2", "pipl_17", "sdk_guide_2020"))
def undeclared_sdk_data(ctx: Context) -> Iterator[Evidence]:
    """应用安装包中嵌入的第三方 SDK（依据 SDK 表所记载的各 SDK 提供方公布的收集范围）会收集某类个人信息（如设备标识符、位置信息、已安装应用列表），但隐私政策从未肯定性地提及该类信息。每类信息一条，证据列出收集该类信息的 SDK。仅在成功获取隐私政策和安装包时检查。

    A third-party SDK embedded in the app's APK collects a type of personal information (such as device identifiers, location or the installed-app list, as the SDK table records from each vendor's published scope), but the privacy policy never affirmatively mentions that type. One finding per data type; the evidence lists the SDKs that collect it. Checked only when both the policy and the APK were fetched.
    """
    if ctx.apk is None or not ctx.policy_ok:
        return
    catalog = sdk_catalog()
    by_type: dict[str, list[str]] = {}
    for hit in ctx.apk.sdks:
        for type_id in catalog.sdks[hit["id"]].collects:
            by_type.setdefault(type_id, []).append(hit["name"])
    for type_id in sorted(by_type):
        if type_id not in ctx.declared:
            yield Evidence(kind="sdk", key=type_id, text="、".join(by_type[type_id]), url=ctx.apk.url or None,
                           detail=type_id)


@rule("D304", severity="medium", confidence="medium",
      title="应用商店数据安全声明未申报应用权限所涉及的个人信息",
      title_en="The store's Data safety form omits a data type the app's permissions reach",
      regulation=("identification_2019_2", "pipl_17"))
def data_safety_omits_permission(ctx: Context) -> Iterator[Evidence]:
    """应用在 Google Play“数据安全”表单中未申报收集某类个人信息（或声明“不收集任何数据”），但应用申请了获取该类信息的危险权限（位置、通讯录、短信、相机、麦克风、日历、设备标识符、本机号码）。按 Google 的定义，仅在设备上处理、不传出设备的数据不算“收集”，因此本规则是待核查的线索：请核对应用是否把这些数据传出设备。每类信息一条，证据列出权限和表单所申报的类别。仅在取得数据安全表单时检查。

    The app's Google Play Data safety form does not declare collecting a type of personal information (or declares that no data is collected) while the app requests a dangerous permission that reaches that type (location, contacts, SMS, camera, microphone, calendar, device identifiers, the phone number). By Google's definition data processed only on the device is not "collected", so this is a lead to check: whether the app sends that data off the device. One finding per data type; the evidence lists the permissions and what the form declares. Checked only when a Data safety form was obtained.
    """
    listing = ctx.data_safety_listing
    if listing is None:
        return
    by_type: dict[str, list[str]] = {}
    for perm in ctx.permissions:
        type_id = ctx.data_type(perm)
        if type_id in _data_safety_types() and ctx.is_dangerous(perm):
            by_type.setdefault(type_id, []).append(perm)
    for type_id in sorted(by_type):
        if not ctx.data_safety_declares(type_id):
            yield Evidence(kind="data_safety", key=type_id, text=", ".join(by_type[type_id]), url=listing.source_url,
                           detail=f"Data safety: {_declared_summary(listing.data_safety)}")


@rule("D305", severity="medium", confidence="medium",
      title="应用商店数据安全声明与隐私政策不一致：政策声明收集的个人信息未在表单中申报",
      title_en="The store's Data safety form omits a data type the privacy policy says is collected",
      regulation=("identification_2019_2", "pipl_17"))
def data_safety_omits_policy(ctx: Context) -> Iterator[Evidence]:
    """隐私政策肯定性地声明收集某类个人信息（如位置、通讯录、身份证号、银行卡、手机号），但应用在 Google Play“数据安全”表单中未申报收集该类信息（或声明“不收集任何数据”）：两份面向用户的声明互相矛盾，至少一份不真实。每类信息一条，证据为政策中第一处提及该类信息的原句及表单所申报的类别。仅在取得隐私政策和数据安全表单时检查。

    The privacy policy affirmatively says it collects a type of personal information (such as location, contacts, the ID number, the bank card or the phone number) while the app's Google Play Data safety form does not declare collecting it (or declares that no data is collected): two statements to users contradict each other, and at least one is untrue. One finding per data type; the evidence is the first policy sentence that names the type, with what the form declares. Checked only when both the policy and a Data safety form were obtained.
    """
    listing = ctx.data_safety_listing
    if listing is None or not ctx.policy_ok:
        return
    text = ctx.app.policy.text
    first: dict[str, Mention] = {}
    for mention in ctx.mentions:
        if not mention.negated and mention.type in _data_safety_types():
            first.setdefault(mention.type, mention)
    for type_id in sorted(ctx.declared & set(first)):
        if not ctx.data_safety_declares(type_id):
            m = first[type_id]
            yield Evidence(kind="quote", key=type_id, text=text[m.sent_start:m.sent_end], start=m.sent_start,
                           end=m.sent_end, url=ctx.app.policy.url,
                           detail=f"Data safety: {_declared_summary(listing.data_safety)}")


@lru_cache(maxsize=1)
def _data_safety_types() -> dict[str, frozenset[tuple[str, str]]]:
    """Our data type -> the Data safety (category, data type) pairs that cover it (data/data_safety.json)."""
    return {t: frozenset((c.casefold(), d.casefold()) for c, d in pairs)
            for t, pairs in load_json("data_safety.json")["types"].items()}


def _declared_summary(data_safety: dict) -> str:
    """What a Data safety form declares collected, in a line: its categories, or that it declares none."""
    categories = dict.fromkeys(entry.get("category", "") for entry in data_safety.get("collected") or ())
    return "collects " + ", ".join(c for c in categories if c) if categories else "no data collected"


# --- S4xx third-party SDKs ----------------------------------------------------------


@rule("S401", severity="medium", confidence="medium",
      title="嵌入的第三方 SDK 未在隐私政策中列明",
      title_en="Embedded third-party SDK not named in the privacy policy",
      regulation=("identification_2019_5", "pipl_23", "sdk_guide_2020"))
def unnamed_sdk(ctx: Context) -> Iterator[Evidence]:
    """应用安装包中检测到第三方 SDK 或追踪器（依据中国常见 SDK 表的包名，或 εxodus 追踪器特征），但隐私政策全文没有出现该 SDK 的名称或提供方名称。通过嵌入的 SDK 向第三方提供个人信息而不告知，属于未经同意向他人提供个人信息。每个 SDK 一条，证据为匹配到的类名。

    A third-party SDK or tracker is detected in the app's APK (by the package names of the Chinese SDK table or by an εxodus tracker signature), but the privacy policy names neither the SDK nor its vendor anywhere. Providing personal information to third parties through embedded SDKs without telling users is providing it without consent. One finding per SDK; the evidence is the class that matched.
    """
    if ctx.apk is None or not ctx.policy_ok:
        return
    catalog = sdk_catalog()
    text = ctx.app.policy.text
    for hit in ctx.apk.sdks:
        if catalog.named_in(hit["id"], simplified(text)) is None:
            yield Evidence(kind="sdk", key=hit["id"], text=hit["name"], url=ctx.apk.url or None,
                           detail=f"{hit['category']}: {hit['evidence']}")


@rule("S402", severity="medium", confidence="high",
      title="金融应用嵌入广告或用户画像类追踪器",
      title_en="Finance app embeds an advertising or profiling tracker",
      regulation=("identification_2019_5", "miit_164_2020", "pipl_6"))
def advertising_tracker(ctx: Context) -> Iterator[Evidence]:
    """金融应用的安装包中嵌入了广告或用户画像类 SDK（中国常见 SDK 表中的广告 SDK，或 εxodus 分类为 Advertisement/Profiling 的追踪器）。这类 SDK 通常收集设备标识符、已安装应用列表等信息用于广告投放，与金融服务无关。每个 SDK 一条，证据为匹配到的类名。

    The finance app's APK embeds an advertising or profiling SDK (an ads SDK of the Chinese SDK table, or an εxodus tracker in the Advertisement or Profiling category). Such SDKs usually collect device identifiers and the installed-app list for ad targeting, which the financial service does not need. One finding per SDK; the evidence is the class that matched.
    """
    if ctx.apk is None:
        return
    catalog = sdk_catalog()
    for hit in ctx.apk.sdks:
        if catalog.sdks[hit["id"]].advertising:
            yield Evidence(kind="sdk", key=hit["id"], text=hit["name"], url=ctx.apk.url or None,
                           detail=f"{hit['category']}: {hit['evidence']}")


# --- V5xx vulnerabilities from the manifest ------------------------------------------

_MANIFEST_RULES = dict(regulation=("jrt_0092_2019", "cybersecurity_law_21"))


@rule("V501", severity="high", confidence="high", **_MANIFEST_RULES,
      title="发布的安装包可调试（android:debuggable）",
      title_en="Released APK is debuggable (android:debuggable)")
def debuggable(ctx: Context) -> Iterator[Evidence]:
    """发布的安装包在清单中设置了 android:debuggable="true"：任何连接 USB 的人都可以附加调试器、读取应用私有数据和内存中的密钥。

    The released APK sets android:debuggable="true" in its manifest: anyone with USB access can attach a debugger and read the app's private data and the keys in its memory.
    """
    if ctx.apk is not None and ctx.apk.debuggable:
        yield Evidence(kind="manifest", key="debuggable", text='android:debuggable="true"', url=ctx.apk.url or None)


@rule("V502", severity="medium", confidence="high", **_MANIFEST_RULES,
      title="允许备份应用数据（android:allowBackup）",
      title_en="App data may be backed up (android:allowBackup)")
def allow_backup(ctx: Context) -> Iterator[Evidence]:
    """清单未关闭 android:allowBackup（未设置时 Android 默认为 true）：应用私有数据（登录凭证、交易记录）可经 adb 备份或云备份被导出到设备之外。

    The manifest does not turn android:allowBackup off (Android defaults it to true when absent): the app's private data (login tokens, transaction records) can leave the device through adb or cloud backup.
    """
    if ctx.apk is not None and ctx.apk.allow_backup:
        yield Evidence(kind="manifest", key="allowBackup", text="android:allowBackup = true (explicit or default)",
                       url=ctx.apk.url or None)


@rule("V503", severity="medium", confidence="high", **_MANIFEST_RULES,
      title="允许明文 HTTP 通信（usesCleartextTraffic）",
      title_en="Cleartext HTTP traffic allowed (usesCleartextTraffic)")
def cleartext_traffic(ctx: Context) -> Iterator[Evidence]:
    """应用允许明文 HTTP 通信：清单设置了 android:usesCleartextTraffic="true"，或未设置且 targetSdkVersion 低于 28（此时 Android 默认允许）。指定了网络安全配置文件时由该文件决定，本规则不判断。

    The app allows cleartext HTTP: its manifest sets android:usesCleartextTraffic="true", or leaves it unset with a targetSdkVersion below 28, where Android allows it by default. When a network security config file is named, that file decides and this rule does not judge.
    """
    apk = ctx.apk
    if apk is not None and apk.uses_cleartext_traffic:
        yield Evidence(kind="manifest", key="usesCleartextTraffic",
                       text=f"usesCleartextTraffic = true (targetSdkVersion {apk.target_sdk})", url=apk.url or None)


@rule("V504", severity="medium", confidence="medium", **_MANIFEST_RULES,
      title="组件导出且无权限保护",
      title_en="Exported component without permission protection")
def exported_unprotected(ctx: Context) -> Iterator[Evidence]:
    """活动、服务、广播接收器或内容提供器被导出（显式 android:exported="true"，或有 intent-filter 而未设置），且没有任何权限保护，其他应用可直接调用。启动器入口活动按设计导出，不计。每个组件一条。

    An activity, service, broadcast receiver or content provider is exported (android:exported="true", or unset with an intent filter) and no permission guards it, so any other app can invoke it. The launcher activity is exported by design and does not count. One finding per component.
    """
    if ctx.apk is None:
        return
    for comp in ctx.apk.exported_unprotected:
        yield Evidence(kind="manifest", key=f"{comp['kind']}:{comp['name']}", text=comp["name"],
                       url=ctx.apk.url or None, detail=comp["kind"])


@rule("V505", severity="low", confidence="high", **_MANIFEST_RULES,
      title="targetSdkVersion 过旧",
      title_en="Outdated targetSdkVersion")
def outdated_target_sdk(ctx: Context) -> Iterator[Evidence]:
    """安装包的 targetSdkVersion 低于设定的下限（默认 30，FINMON_MIN_TARGET_SDK）：Android 对其保留旧行为，如低于 23 时安装即授予全部危险权限、低于 28 时默认允许明文流量、低于 29 时自动获得后台位置权限。

    The APK's targetSdkVersion is below the configured floor (30 by default, FINMON_MIN_TARGET_SDK), so Android keeps old behaviours for it: below 23 every dangerous permission is granted at install, below 28 cleartext traffic is allowed by default, below 29 background location comes with foreground location.
    """
    apk = ctx.apk
    if apk is not None and apk.target_sdk < FINMON_MIN_TARGET_SDK:
        yield Evidence(kind="manifest", key="targetSdkVersion", text=f"targetSdkVersion {apk.target_sdk}",
                       url=apk.url or None, detail=f"below {FINMON_MIN_TARGET_SDK}")


# --- R6xx registration and marketing -------------------------------------------------


@rule("R601", severity="high", confidence="medium", requires="registry",
      severity_by_type={"securities": "medium", "banking": "medium", "insurance": "medium", "other": "medium"},
      title="应用或开发者不在登记名单中",
      title_en="App or developer not in the supplied registry",
      regulation=("nifa_registration", "internet_finance_rectification_2016"))
def not_in_registry(ctx: Context) -> Iterator[Evidence]:
    """应用既未按包名、也未按（规范化后的）应用名称加开发者名称（商店给出开发者法定名称时用法定名称，否则用商店显示的名称）出现在所提供的登记名单（中国互联网金融协会式的应用登记/备案名单）中。网络借贷、网络支付、投资理财类为高风险，其他类型为中风险；证据说明查找了什么，以及开发者是否出现在机构许可名单中。未配置名单时本规则不执行，报告和命令行会注明“未执行”。

    The app appears in the supplied registry (a NIFA-style app registration list) neither by package name nor by its normalised app name together with its normalised developer (its legal entity where a store gives one, else the name the store shows). High severity for lending, payment and investment apps, medium for the other types; the evidence says what was looked up and whether the developer holds a listed institution licence. Without a configured registry the rule is not applied, and the report and the CLI say so.
    """
    registry = ctx.registry
    if registry is None or registry.lookup(ctx.app) is not None:
        return
    app = ctx.app
    licence = registry.licence(app)
    if licence is not None:
        held = f"developer licensed: {licence.licence_type or 'licence'} {licence.licence_no} (line {licence.line})"
    else:
        held = "developer not in the licence list"
    source = f" in {registry.source}" if registry.source else ""
    developers = " / ".join(repr(name) for name in developer_names(app)) or "''"
    detail = (f"looked up{source} ({registry.app_count} apps, {registry.licence_count} licensed institutions): "
              f"package {app.package!r}; name {app.name!r} + developer {developers}; {held}")
    url = next((lst.source_url for lst in app.listings if lst.source_url), None)
    owner = app.legal_entity or app.developer
    yield Evidence(kind="absence", key="registry", text=f"未在登记名单中找到：{app.name}（{owner}，{app.package}）",
                   url=url, detail=detail)


@rule("R602", severity="high", confidence="medium",
      title="应用商店页面含非法集资宣传用语",
      title_en="Store listing uses illegal fund-raising language",
      regulation=("fundraising_2021_2", "fundraising_2021_11", "asset_management_2018_2", "asset_management_2018_19",
                  "advertising_law_25", "pyramid_selling_2005"),
      regulation_by_key={c["id"]: tuple(c["regulation"]) for c in fundraising_data()["categories"]})
def fundraising_language(ctx: Context) -> Iterator[Evidence]:
    """应用商店页面（应用名称或简介）含非法集资宣传用语：承诺保本保息或无风险（“保本保息”“稳赚不赔”“零风险”）、宣传不切实际的高收益（年化、月息、日息折算为年化后达到阈值，默认 10%）、推荐返利或拉人头（“邀请好友返现”“返佣”）。每类一条，证据为含该用语的原句及其在该字段中的位置；否定或警示语境（“不承诺保本保息”“谨防保本保息骗局”）不计。

    The store listing (app name or description) uses illegal fund-raising language: promises of principal and interest or of no risk ("guaranteed returns", "risk-free"), unrealistic yields (annual, monthly or daily rates annualised and at or above a threshold, 10% by default), or referral rebates and recruiting rewards. One finding per category; the evidence is the sentence with the phrase and its offsets in that field. Negated or warning contexts ("we do not promise principal and interest", "beware of guaranteed-return scams") do not count.
    """
    app = ctx.app
    fields = (("name", app.name), ("description", app.description))
    titles = {c["id"]: c for c in fundraising_data()["categories"]}
    seen: set[str] = set()
    for field_name, text in fields:
        for hit in scan_listing_text(text):
            if hit.category in seen:
                continue
            seen.add(hit.category)
            url = next((lst.source_url for lst in app.listings if getattr(lst, field_name) == text and lst.source_url),
                       next((lst.source_url for lst in app.listings if lst.source_url), None))
            annual = f" (annualised {hit.annual_percent:g}%)" if hit.annual_percent is not None else ""
            yield Evidence(kind="quote", key=hit.category, text=text[hit.sent_start:hit.sent_end],
                           start=hit.sent_start, end=hit.sent_end, url=url,
                           detail=f"{field_name}: {hit.phrase}{annual} [{titles[hit.category]['title_en']}]")


@rule("R603", severity="high", confidence="medium",
      title="同一应用在不同商店登记的开发者法定主体不一致",
      title_en="The same app is listed under different legal owners in different stores",
      regulation=("nifa_registration", "jrt_0092_2019"))
def conflicting_legal_owners(ctx: Context) -> Iterator[Evidence]:
    """同一应用（同一平台、同一包名）在不同应用商店登记的开发者法定主体不一致（按规范化后的名称比较：去掉“有限公司”“Co., Ltd.”等组织形式和“（中国）”）：可能是仿冒或二次打包的应用、未经授权的分发渠道，或主体变更后未同步更新的商店信息。只比较商店给出法定主体的页面，且只比较同一文字（中文与中文、拉丁字母与拉丁字母），因为同一公司的中英文名称无法可靠对应。证据列出每个商店及其登记的主体。

    The same app (same platform and package) is listed under different legal owners in different stores, compared by normalised name (legal forms such as 有限公司 or "Co., Ltd." and "(China)" removed): possibly a counterfeit or repackaged app, an unauthorised distribution channel, or a store not updated after a change of owner. Only listings whose store gives a legal entity are compared, and only names in the same script (Chinese with Chinese, Latin with Latin), because a company's Chinese and English names cannot be matched reliably. The evidence lists each store with the owner it names.
    """
    by_script: dict[bool, dict[str, list[str]]] = {}
    for lst in ctx.app.listings:
        if lst.legal_entity and (normalised := normalise_developer(lst.legal_entity)):
            owners = by_script.setdefault(_has_cjk(lst.legal_entity), {})
            owners.setdefault(normalised, []).append(f"{lst.store}: {lst.legal_entity}")
    for cjk in sorted(by_script, reverse=True):
        owners = by_script[cjk]
        if len(owners) > 1:
            listed = sorted(entry for entries in owners.values() for entry in entries)
            url = next((lst.source_url for lst in ctx.app.listings if lst.source_url), None)
            yield Evidence(kind="listing", key="legal_entity" if cjk else "legal_entity_latin", text="；".join(listed),
                           url=url, detail=f"{len(owners)} different legal owners")


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)
