"""analyzers.apk on real APK files: manifests compiled by Debian's aapt, class lists cross-checked with dexdump."""
from __future__ import annotations

import hashlib
import io
import re
import subprocess
import zipfile

import pytest

from analyzers.apk import ApkError, dex_classes, inspect_apk, read_apk
from analyzers.policy_text import load_json
from analyzers.sdks import sdk_catalog
from market.apk import ApkSpec, Component, build_apk, dex, manifest_xml, zip_bomb
from tests.support import FRAMEWORK_RES, platform_tool

P = "android.permission."
MAIN = Component("activity", ".MainActivity", actions=("android.intent.action.MAIN",),
                 categories=("android.intent.category.LAUNCHER",))
LOAN = ApkSpec(
    package="com.example.loan", version_name="2.3.1", version_code=231, min_sdk=21, target_sdk=27, label="安心借",
    permissions=(P + "READ_CONTACTS", P + "WRITE_EXTERNAL_STORAGE", P + "ACCESS_FINE_LOCATION", P + "INTERNET"),
    debuggable=True,
    components=(
        MAIN,
        Component("receiver", "cn.jpush.android.service.PushReceiver",
                  actions=("cn.jpush.android.intent.NOTIFICATION_RECEIVED_PROXY",)),
        Component("provider", ".FileProvider", exported=True, authorities="com.example.loan.files"),
        Component("service", ".Guarded", exported=True, permission="com.example.loan.permission.PRIVATE"),
        Component("activity", ".Internal"),
    ),
    classes=("com.example.loan.MainActivity", "cn.jpush.android.api.JPushInterface",
             "com.umeng.analytics.MobclickAgent", "com.facebook.ads.AdView", "com.tencent.bugly.crashreport.CrashReport"),
)


def aapt_apk(spec: ApkSpec, tmp_path):
    """The spec's manifest compiled by aapt against the Android framework, plus our classes.dex."""
    aapt = platform_tool("aapt", "aapt")
    framework = platform_tool(FRAMEWORK_RES, "android-framework-res")
    (tmp_path / "AndroidManifest.xml").write_text(manifest_xml(spec), encoding="utf-8")
    out = tmp_path / "aapt.apk"
    subprocess.run([aapt, "package", "-f", "-M", str(tmp_path / "AndroidManifest.xml"), "-I", framework,
                    "-F", str(out)], check=True, capture_output=True)
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("classes.dex", dex(spec.classes))
    return out


def badging(path) -> dict[str, list[str]]:
    """`aapt dump badging` lines by their key (the part before the first colon)."""
    text = subprocess.run([platform_tool("aapt", "aapt"), "dump", "badging", str(path)], check=True,
                          capture_output=True, text=True).stdout
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def names(values: list[str]) -> set[str]:
    return {re.search(r"name='([^']*)'", v).group(1) for v in values}


@pytest.mark.parametrize("spec", [
    LOAN,
    ApkSpec(package="com.example.old", target_sdk=15, min_sdk=9,
            permissions=(P + "READ_CONTACTS", P + "WRITE_CONTACTS", P + "READ_PHONE_STATE")),
    ApkSpec(package="com.example.bare"),
], ids=["loan", "target15", "bare"])
def test_identity_and_permissions_are_what_aapt_reads(spec, tmp_path):
    path = aapt_apk(spec, tmp_path)
    info, seen = read_apk(path), badging(path)
    package = seen["package"][0]
    assert f"name='{info.package}'" in package and f"versionCode='{info.version_code}'" in package
    assert f"versionName='{info.version}'" in package
    assert seen["sdkVersion"] == [f"'{info.min_sdk}'"] and seen["targetSdkVersion"] == [f"'{info.target_sdk}'"]
    implied_by_aapt = names(seen.get("uses-implied-permission", []))
    assert set(info.permissions) == names(seen.get("uses-permission", [])) - implied_by_aapt
    assert implied_by_aapt <= set(info.implied_permissions)


def test_implied_permissions_follow_the_target_sdk():
    info = inspect_apk(build_apk(LOAN))
    assert info.implied_permissions == (P + "ACCESS_BACKGROUND_LOCATION", P + "READ_EXTERNAL_STORAGE")
    modern = inspect_apk(build_apk(ApkSpec(package="a.b", target_sdk=34, permissions=(P + "ACCESS_FINE_LOCATION",))))
    assert modern.implied_permissions == ()
    old = inspect_apk(build_apk(ApkSpec(package="a.b", target_sdk=3, min_sdk=3, permissions=(P + "READ_CONTACTS",))))
    assert set(old.implied_permissions) == {P + "READ_CALL_LOG", P + "WRITE_EXTERNAL_STORAGE", P + "READ_PHONE_STATE"}
    assert {r["to"] for r in load_json("permissions.json")["implied"]} <= set(load_json("permissions.json")["dangerous"])


@pytest.mark.parametrize("attr, value, target, expected", [
    ("debuggable", None, 33, False), ("debuggable", True, 33, True), ("debuggable", False, 33, False),
    ("allow_backup", None, 33, True), ("allow_backup", False, 33, False), ("allow_backup", True, 27, True),
    ("uses_cleartext_traffic", None, 27, True), ("uses_cleartext_traffic", None, 28, False),
    ("uses_cleartext_traffic", True, 33, True), ("uses_cleartext_traffic", False, 27, False),
])
def test_manifest_flags_as_android_applies_them(attr, value, target, expected, tmp_path):
    spec = ApkSpec(package="com.example.flags", target_sdk=target, **{attr: value})
    assert getattr(read_apk(aapt_apk(spec, tmp_path)), attr) is expected
    assert getattr(inspect_apk(build_apk(spec)), attr) is expected


def test_exported_components_without_a_guard(tmp_path):
    info = read_apk(aapt_apk(LOAN, tmp_path))
    assert [(c["kind"], c["name"]) for c in info.exported_unprotected] == [
        ("receiver", "cn.jpush.android.service.PushReceiver"), ("provider", "com.example.loan.FileProvider")]


@pytest.mark.parametrize("component, target, exported", [
    (Component("provider", ".P", authorities="a.p"), 16, True),  # providers default to exported up to 16
    (Component("provider", ".P", authorities="a.p"), 17, False),
    (Component("provider", ".P", exported=True, authorities="a.p", read_permission="a.R"), 33, True),
    (Component("provider", ".P", exported=True, authorities="a.p", read_permission="a.R", write_permission="a.W"),
     33, False),
    (Component("service", ".S", actions=("a.ACTION",)), 30, True),  # an intent filter exports by default
    (Component("service", ".S", exported=False, actions=("a.ACTION",)), 30, False),
    (Component("activity", ".A", exported=True), 33, True),
    (Component("activity", ".A"), 33, False),
])
def test_exported_defaults(component, target, exported, tmp_path):
    spec = ApkSpec(package="com.example.exp", target_sdk=target, components=(MAIN, component))
    for info in (read_apk(aapt_apk(spec, tmp_path)), inspect_apk(build_apk(spec))):
        assert bool(info.exported_unprotected) is exported, info.exported_unprotected


def test_the_application_permission_guards_its_components():
    spec = ApkSpec(package="com.example.guard", application_permission="com.example.guard.P",
                   components=(Component("service", ".S", exported=True),))
    assert inspect_apk(build_apk(spec)).exported_unprotected == ()


def test_sdks_are_every_match_on_the_classes_dexdump_lists(tmp_path):
    """dexdump (the platform tool) lists the classes; plain εxodus matching and the table must all be reported."""
    dexdump = platform_tool("dexdump", "dexdump")
    (tmp_path / "classes.dex").write_bytes(dex(LOAN.classes))
    listing = subprocess.run([dexdump, str(tmp_path / "classes.dex")], check=True, capture_output=True,
                             text=True).stdout
    classes = [d[1:-1].replace("/", ".") for d in re.findall(r"Class descriptor\s*:\s*'([^']+)'", listing)]
    assert sorted(classes) == sorted(dex_classes(dex(LOAN.classes))) == sorted(LOAN.classes)
    catalog = sdk_catalog()
    matched = {sdk_id for sdk_id, sig in catalog.signatures if any(sig.search(c) for c in classes)}
    reported = {s["id"] for s in inspect_apk(build_apk(LOAN)).sdks}
    assert {catalog.merged.get(m, m) for m in matched} <= reported
    assert reported == {"jpush", "umeng", "bugly", "exodus:" + next(
        i.removeprefix("exodus:") for i, s in catalog.sdks.items() if s.name == "Facebook Ads")}


def test_identity_hash_and_label():
    data = build_apk(LOAN)
    info = inspect_apk(data, url="http://127.0.0.1/apk/loan.apk")
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    assert info.label == "安心借" and info.url.endswith("loan.apk")
    assert info.min_sdk == 21 and info.target_sdk == 27 and info.version_code == 231


@pytest.mark.parametrize("data, message", [
    (b"not a zip at all", "not a readable APK"),
    (b"PK\x05\x06" + b"\0" * 18, "AndroidManifest"),  # an empty zip: no manifest
])
def test_unreadable_files_are_one_clear_error(data, message):
    with pytest.raises(ApkError, match=message):
        inspect_apk(data)


def test_a_broken_dex_is_one_clear_error():
    good = build_apk(LOAN)
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        manifest = zf.read("AndroidManifest.xml")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("AndroidManifest.xml", manifest)
        zf.writestr("classes.dex", dex(LOAN.classes)[:0x80])
    with pytest.raises(ApkError, match="DEX"):
        inspect_apk(buf.getvalue())


def test_the_size_cap_refuses_before_parsing(tmp_path):
    path = tmp_path / "big.apk"
    path.write_bytes(build_apk(LOAN))
    with pytest.raises(ApkError, match="over the 100-byte limit"):
        read_apk(path, max_bytes=100)
    with pytest.raises(ApkError, match="limit"):
        inspect_apk(path.read_bytes(), max_bytes=100)


def test_a_zip_bomb_is_refused_before_it_inflates():
    bomb = zip_bomb(LOAN, 1024 ** 3)
    assert len(bomb) < 2 * 1024 ** 2
    with pytest.raises(ApkError, match=r"^APK refused: classes.dex inflates beyond 134,217,728 bytes"):
        inspect_apk(bomb)


def test_the_inflated_bytes_of_one_apk_are_capped_in_all():
    two = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(build_apk(LOAN))) as zf, zipfile.ZipFile(two, "w") as out:
        for name in zf.namelist():
            out.writestr(name, zf.read(name))
        out.writestr("classes2.dex", zf.read("classes.dex"))
        sizes = [info.file_size for info in zf.infolist() if info.filename != "META-INF/MANIFEST.MF"]
    entry, total = max(sizes), sum(sizes) + sizes[-1]  # manifest, classes.dex and classes2.dex
    assert inspect_apk(two.getvalue(), max_entry_bytes=entry, max_inflated_bytes=total).sdks
    with pytest.raises(ApkError, match="APK refused: its manifest and DEX files inflate beyond"):
        inspect_apk(two.getvalue(), max_entry_bytes=entry, max_inflated_bytes=total - 1)


def test_an_entry_inflating_beyond_its_stated_size_is_cut_off():
    """A zip entry that understates its size is read up to the stated size only, then refused."""
    stated, real = 1024 ** 2, 3 * 1024 ** 2
    bomb = bytearray(zip_bomb(LOAN, real))
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # the classes.dex headers come second
        at = bomb.index(header, bomb.index(header) + 1)
        size_at = at + (22 if header == b"PK\x03\x04" else 24)
        assert int.from_bytes(bomb[size_at:size_at + 4], "little") == real
        bomb[size_at:size_at + 4] = stated.to_bytes(4, "little")
    with pytest.raises(ApkError, match="not a readable APK: classes.dex"):
        inspect_apk(bytes(bomb))


def test_finmon_apk_on_a_gigabyte_bomb_is_one_line_and_stays_small(tmp_path):
    """The peak RSS of `finmon apk` on a 1 MB APK inflating to 1 GB (the bound is far from the line)."""
    import sys

    path = tmp_path / "bomb.apk"
    path.write_bytes(zip_bomb(LOAN, 1024 ** 3))
    measure = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(p.stderr, end='')")
    out = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "finmon.cli", "apk", str(path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    code, peak_kb = map(int, out[0].split())
    assert code == 1 and len(out) == 2 and "APK refused: classes.dex inflates beyond" in out[1]
    assert peak_kb < 600 * 1024
