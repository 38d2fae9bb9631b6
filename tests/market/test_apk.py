"""market.apk: the APKs read as their spec says, in androguard and in the Android platform tools (aapt, dexdump)."""
from __future__ import annotations

import hashlib
import io
import re
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from androguard.core.apk import APK
from androguard.core.dex import DEX
from loguru import logger

from market.apk import ApkSpec, Component, binary_manifest, build_apk, descriptor, dex, manifest_xml
from tests.support import FRAMEWORK_RES, platform_tool


FULL = ApkSpec(
    package="com.example.pay", version_name="2.1.0", version_code=210, min_sdk=23, target_sdk=34, label="安心借",
    permissions=("android.permission.INTERNET", "android.permission.READ_PHONE_STATE",
                 "android.permission.ACCESS_FINE_LOCATION"),
    permissions_max_sdk=(("android.permission.WRITE_EXTERNAL_STORAGE", 28),),
    debuggable=True, allow_backup=False, uses_cleartext_traffic=True,
    application_permission="com.example.pay.permission.APP",
    components=(
        Component("activity", "com.example.pay.MainActivity", exported=True, actions=("android.intent.action.MAIN",),
                  categories=("android.intent.category.LAUNCHER",)),
        Component("activity", "com.example.pay.LoanActivity"),
        Component("service", "com.example.pay.SyncService", exported=False,
                  permission="android.permission.BIND_JOB_SERVICE"),
        Component("receiver", "com.example.pay.BootReceiver", exported=True,
                  actions=("android.intent.action.BOOT_COMPLETED", "android.intent.action.MY_PACKAGE_REPLACED")),
        Component("provider", "com.example.pay.LoanProvider", exported=True, permission="com.example.pay.permission.P",
                  authorities="com.example.pay.loans", read_permission="com.example.pay.permission.READ",
                  write_permission="com.example.pay.permission.WRITE"),
    ),
    classes=("com.umeng.analytics.MobclickAgent", "com.example.pay.MainActivity", "com.example.pay.MainActivity$1",
             "cn.jpush.android.api.JPushInterface"),
)
MINIMAL = ApkSpec(package="com.example.empty")
# Text that aapt would otherwise read as markup, a reference (@, ?) or an escape (\); UTF-16 surrogates in names.
AWKWARD = ApkSpec(package="com.example.odd", label="@Ann's \"Loan\" <&> C:\\x 借钱😀", debuggable=False,
                  components=(Component("service", "com.example.odd.S", categories=("a.b.CATEGORY",)),),
                  classes=("com.例子.Main", "a.\uff21", "a.\U0001f600"))
SPECS = {"full": FULL, "minimal": MINIMAL, "awkward": AWKWARD}
parametrize_specs = pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())


def run(*args: str) -> str:
    """A tool's stdout (bytes that are not UTF-8 kept as surrogate escapes); it must exit 0, with nothing on stderr."""
    done = subprocess.run(args, capture_output=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), (args, done.stderr)
    return done.stdout.decode("utf-8", "surrogateescape")


def mutf8(text: str) -> bytes:
    """UTF-8 of each UTF-16 code unit on its own (MUTF-8 without NULs): how DEX stores names beyond U+FFFF."""
    units = text.encode("utf-16-be")
    return "".join(chr(int.from_bytes(units[i:i + 2], "big")) for i in range(0, len(units), 2)).encode(
        "utf-8", "surrogatepass")


@pytest.fixture(autouse=True, scope="module")
def quiet_androguard():
    """androguard logs every step through loguru."""
    logger.disable("androguard")
    yield
    logger.enable("androguard")


def _attributes(element) -> dict[str, str]:
    """An lxml element's attributes without their namespace."""
    return {re.sub(r"^\{.*\}", "", k): v for k, v in element.attrib.items()}


def _bool(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def _present(attrs: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in attrs.items() if v is not None}


@parametrize_specs
def test_androguard_reads_the_spec(spec: ApkSpec) -> None:
    data = build_apk(spec)
    apk = APK(data, raw=True)
    assert apk.is_valid_APK() and apk.get_package() == spec.package
    assert apk.get_androidversion_name() == spec.version_name
    assert apk.get_androidversion_code() == str(spec.version_code)
    assert (apk.get_min_sdk_version(), apk.get_target_sdk_version()) == (str(spec.min_sdk), str(spec.target_sdk))
    assert sorted(apk.get_permissions()) == sorted([*spec.permissions, *(p for p, _ in spec.permissions_max_sdk)])
    manifest = apk.get_android_manifest_xml()
    assert [_attributes(e) for e in manifest.iterfind("uses-permission")] == [
        *({"name": p} for p in spec.permissions),
        *({"name": p, "maxSdkVersion": str(n)} for p, n in spec.permissions_max_sdk)]
    (application,) = manifest.iterfind("application")
    assert _attributes(application) == _present({
        "label": spec.label or None, "permission": spec.application_permission, "debuggable": _bool(spec.debuggable),
        "allowBackup": _bool(spec.allow_backup), "usesCleartextTraffic": _bool(spec.uses_cleartext_traffic)})
    assert apk.get_attribute_value("application", "debuggable") == _bool(spec.debuggable)
    assert [(e.tag, _attributes(e)) for e in application] == [(c.kind, _present({
        "name": c.name, "permission": c.permission, "readPermission": c.read_permission,
        "writePermission": c.write_permission, "exported": _bool(c.exported), "authorities": c.authorities,
    })) for c in spec.components]
    for c in spec.components:
        expected = _present({"action": list(c.actions) or None, "category": list(c.categories) or None})
        assert apk.get_intent_filters(c.kind, c.name) == expected
    assert apk.get_file("AndroidManifest.xml") == binary_manifest(spec)
    assert apk.get_dex() == dex(spec.classes)
    assert sorted(DEX(apk.get_dex()).get_classes_names()) == sorted(descriptor(c) for c in spec.classes)


def test_androguard_reads_the_launcher_and_the_component_lists() -> None:
    apk = APK(build_apk(FULL), raw=True)
    assert apk.get_main_activity() == "com.example.pay.MainActivity"
    assert apk.get_app_name() == "安心借"
    assert sorted(apk.get_activities()) == ["com.example.pay.LoanActivity", "com.example.pay.MainActivity"]
    assert apk.get_services() == ["com.example.pay.SyncService"]
    assert apk.get_receivers() == ["com.example.pay.BootReceiver"]
    assert apk.get_providers() == ["com.example.pay.LoanProvider"]


@parametrize_specs
def test_aapt_compiles_the_text_manifest_to_the_same_binary_manifest(spec: ApkSpec, tmp_path: Path) -> None:
    aapt = platform_tool("aapt", "aapt")
    framework = platform_tool(FRAMEWORK_RES, "android-framework-res")
    (tmp_path / "AndroidManifest.xml").write_text(manifest_xml(spec), "utf-8")  # aapt wants that very file name
    run(aapt, "package", "-f", "-M", str(tmp_path / "AndroidManifest.xml"), "-I", framework,
        "-F", str(tmp_path / "aapt.apk"))
    (tmp_path / "ours.apk").write_bytes(build_apk(spec))
    dumps = {name: (run(aapt, "dump", "xmltree", str(tmp_path / f"{name}.apk"), "AndroidManifest.xml"),
                    run(aapt, "dump", "badging", str(tmp_path / f"{name}.apk"))) for name in ("aapt", "ours")}
    # aapt adds the SDK it builds against (from framework-res.apk: compileSdkVersion*, platformBuildVersion*) to
    # <manifest>; we leave that out. Everything else, line numbers and attribute order included, is identical.
    injected = re.compile(r"^ +A: (android:)?(compileSdkVersion|platformBuildVersion)\w*[(=].*\n", re.M)
    platform = re.compile(r" (platformBuildVersion|compileSdkVersion)\w*='[^']*'")
    aapt_tree, aapt_badging = dumps["aapt"]
    assert len(injected.findall(aapt_tree)) == 4
    assert dumps["ours"] == (injected.sub("", aapt_tree), platform.sub("", aapt_badging))
    tree, badging = dumps["ours"]
    assert f'A: package="{spec.package}"' in tree and "android:versionCode(0x0101021b)=(type 0x10)" in tree
    # the declared permissions; permissions implied by them (WRITE_ → READ_EXTERNAL_STORAGE) are listed further down
    assert badging.startswith("\n".join([
        f"package: name='{spec.package}' versionCode='{spec.version_code}' versionName='{spec.version_name}'",
        f"sdkVersion:'{spec.min_sdk}'", f"targetSdkVersion:'{spec.target_sdk}'",
        *(f"uses-permission: name='{p}'" for p in spec.permissions),
        *(f"uses-permission: name='{p}' maxSdkVersion='{n}'" for p, n in spec.permissions_max_sdk),
        "application: "]))


@pytest.mark.parametrize("classes", [FULL.classes, AWKWARD.classes, ()], ids=["full", "awkward", "none"])
def test_dexdump_verifies_the_dex_and_lists_its_classes(classes: tuple[str, ...], tmp_path: Path) -> None:
    dexdump = platform_tool("dexdump", "dexdump")
    path = tmp_path / "classes.dex"
    path.write_bytes(dex(classes))
    # dexdump runs ART's DexFileVerifier (checksum, section layout, string order) and exits 1 if it fails
    assert "Checksum verified" in run(dexdump, "-c", str(path))
    listing = run(dexdump, "-f", str(path)).encode("utf-8", "surrogateescape")
    assert re.search(rb"class_defs_size +: %d\n" % len(classes), listing)
    # dexdump prints the names' MUTF-8 bytes as they are
    assert sorted(re.findall(rb"Class descriptor +: '(.*)'", listing)) == sorted(mutf8(descriptor(c)) for c in classes)
    assert listing.count(b"Superclass        : 'Ljava/lang/Object;'") == len(classes)


@pytest.mark.parametrize("classes", [FULL.classes, AWKWARD.classes, ()], ids=["full", "awkward", "none"])
def test_dex_header_checksum_and_signature(classes: tuple[str, ...]) -> None:
    data = dex(classes)
    assert data[:8] == b"dex\n035\0" and struct.unpack_from("<III", data, 32) == (len(data), 0x70, 0x12345678)
    assert struct.unpack_from("<I", data, 8)[0] == zlib.adler32(data[12:])
    assert data[12:32] == hashlib.sha1(data[32:]).digest()
    assert sorted(DEX(data).get_classes_names()) == sorted(descriptor(c) for c in classes)


@parametrize_specs
def test_same_spec_same_bytes(spec: ApkSpec) -> None:
    data = build_apk(spec)
    assert build_apk.__wrapped__(ApkSpec(**vars(spec))) == data  # built again, not the simulator's cached copy
    with zipfile.ZipFile(io.BytesIO(data)) as apk:
        infos = apk.infolist()
    assert [i.filename for i in infos] == ["AndroidManifest.xml", "META-INF/MANIFEST.MF", "classes.dex"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert dex(reversed(spec.classes)) == dex(spec.classes)


def test_different_specs_different_bytes() -> None:
    assert len({build_apk(spec) for spec in SPECS.values()}) == len(SPECS)
    assert build_apk(ApkSpec(package="com.example.empty", version_code=2)) != build_apk(MINIMAL)


def test_mistakes_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Component("fragment", "com.example.F")
    with pytest.raises(ValueError, match="providers only"):
        Component("activity", "com.example.A", authorities="com.example.a")
    with pytest.raises(ValueError, match="Object"):
        dex(["java.lang.Object"])
