"""One APK file: its manifest as Android applies it, its permissions and the SDKs in its classes.

The zip is read with the standard library and the binary manifest with androguard's AXML parser; the class
list comes from each DEX file's class definitions (read here: a few header tables, no bytecode). Only the
manifest and the classes*.dex entries are inflated, one at a time, each refused before it is read when its
size says it inflates beyond FINMON_APK_MAX_ENTRY_BYTES, or all of them together beyond
FINMON_APK_MAX_INFLATED_BYTES (a zip bomb), and cut off at its stated size while it is read. A DEX file is
held whole while its class names are read (its tables point anywhere in it), so one entry bounds the memory. Flags take the platform's default for the
app's targetSdk when the attribute is absent: ``debuggable`` false; ``allowBackup`` true;
``usesCleartextTraffic`` true below API 28 and false from it, undecided (None) when a network security
config is named, since that file then decides. A component is exported when it says so or, without the
attribute, when it has an intent filter (a provider: when targetSdk ≤ 16); it is protected by its own
permission or the application's (a provider needs both read and write guarded). The launcher activity is
exported by design and is not listed.
"""
from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from finmon.model import ApkInfo
from finmon.settings import FINMON_APK_MAX_BYTES, FINMON_APK_MAX_ENTRY_BYTES, FINMON_APK_MAX_INFLATED_BYTES

from .policy_text import load_json
from .sdks import detect_sdks

__all__ = ["ApkError", "dex_classes", "inspect_apk", "read_apk"]

ANDROID = "{http://schemas.android.com/apk/res/android}"
COMPONENTS = ("activity", "activity-alias", "service", "receiver", "provider")
LAUNCHER = ("android.intent.action.MAIN", "android.intent.category.LAUNCHER")
MANIFEST = "AndroidManifest.xml"
CHUNK = 1024 * 1024
CLEARTEXT_DEFAULT_OFF = 28  # API level from which usesCleartextTraffic defaults to false
PROVIDER_EXPORTED_UNTIL = 16  # providers are exported by default up to this targetSdk


class ApkError(ValueError):
    """The file is not an APK we can read (not a zip, no manifest, too large, broken DEX)."""


def read_apk(path: Path, max_bytes: int = FINMON_APK_MAX_BYTES, max_entry_bytes: int = FINMON_APK_MAX_ENTRY_BYTES,
             max_inflated_bytes: int = FINMON_APK_MAX_INFLATED_BYTES) -> ApkInfo:
    """Inspect the APK file at ``path`` (refused above ``max_bytes``), reading it from disk as needed."""
    size = path.stat().st_size
    if size > max_bytes:
        raise ApkError(f"{path}: {size:,} bytes is over the {max_bytes:,}-byte limit (FINMON_APK_MAX_BYTES)")
    with path.open("rb") as file:
        return _inspect(file, size, "", max_entry_bytes, max_inflated_bytes)


def inspect_apk(data: bytes, url: str = "", max_bytes: int = FINMON_APK_MAX_BYTES,
                max_entry_bytes: int = FINMON_APK_MAX_ENTRY_BYTES,
                max_inflated_bytes: int = FINMON_APK_MAX_INFLATED_BYTES) -> ApkInfo:
    """Everything :class:`ApkInfo` holds about the APK in ``data``."""
    if len(data) > max_bytes:
        raise ApkError(f"{len(data):,} bytes is over the {max_bytes:,}-byte limit (FINMON_APK_MAX_BYTES)")
    return _inspect(io.BytesIO(data), len(data), url, max_entry_bytes, max_inflated_bytes)


def _inspect(file: BinaryIO, size: int, url: str, max_entry_bytes: int, max_inflated_bytes: int) -> ApkInfo:
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ApkError(f"not a readable APK: {type(exc).__name__}: {exc}") from exc
    with zf:
        reader = _EntryReader(zf, max_entry_bytes, max_inflated_bytes)
        dex_names = sorted(n for n in zf.namelist() if n.startswith("classes") and n.endswith(".dex") and "/" not in n)
        reader.check([MANIFEST, *dex_names])
        manifest = _manifest(reader.read(MANIFEST))
        if manifest is None or manifest.tag != "manifest" or not manifest.get("package"):
            raise ApkError("no readable AndroidManifest.xml with a package name")
        classes = [name for entry in dex_names for name in dex_classes(reader.read(entry))]
    uses_sdk = manifest.find("uses-sdk")
    min_sdk = _int(_attr(uses_sdk, "minSdkVersion"), 1)
    target_sdk = _int(_attr(uses_sdk, "targetSdkVersion"), min_sdk)
    app = manifest.find("application")
    requested = {_attr(p, "name") for tag in ("uses-permission", "uses-permission-sdk-23")
                 for p in manifest.findall(tag)} - {None}
    cleartext = None
    if _attr(app, "networkSecurityConfig") is None:
        cleartext = _bool(_attr(app, "usesCleartextTraffic"), target_sdk < CLEARTEXT_DEFAULT_OFF)
    return ApkInfo(
        sha256=_sha256(file), size=size, package=manifest.get("package"),
        label=_literal(_attr(app, "label")),
        version=_attr(manifest, "versionName") or "", version_code=_int(_attr(manifest, "versionCode"), None),
        min_sdk=min_sdk, target_sdk=target_sdk,
        permissions=tuple(sorted(requested)),
        implied_permissions=implied_permissions(requested, target_sdk),
        debuggable=_bool(_attr(app, "debuggable"), False),
        allow_backup=_bool(_attr(app, "allowBackup"), True),
        uses_cleartext_traffic=cleartext,
        exported_unprotected=tuple(_exported_unprotected(app, target_sdk, manifest.get("package"))),
        sdks=tuple(detect_sdks(classes)),
        url=url,
    )


class _EntryReader:
    """Inflates zip entries within a per-entry and a per-APK byte budget."""

    def __init__(self, zf: zipfile.ZipFile, max_entry_bytes: int, max_inflated_bytes: int) -> None:
        self.zf, self.max_entry, self.max_total = zf, max_entry_bytes, max_inflated_bytes

    def check(self, names: list[str]) -> None:
        """Refuse before inflating anything when the sizes the zip states for ``names`` break a limit."""
        total = 0
        for name in names:
            info = self._info(name)
            if info is None:
                continue
            self._check_entry(name, info.file_size)
            total += info.file_size
        if total > self.max_total:
            raise ApkError(f"APK refused: its manifest and DEX files inflate beyond {self.max_total:,} bytes "
                           "(FINMON_APK_MAX_INFLATED_BYTES)")

    def read(self, name: str) -> bytearray:
        """The inflated entry (empty when absent), read in chunks up to the size the zip states for it."""
        info = self._info(name)
        if info is None:
            return bytearray()
        self._check_entry(name, info.file_size)
        out, filled = bytearray(info.file_size), 0
        try:
            with self.zf.open(info) as entry:
                while chunk := entry.read(CHUNK):
                    self._check_entry(name, filled + len(chunk), stated=info.file_size)
                    out[filled:filled + len(chunk)] = chunk
                    filled += len(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise ApkError(f"not a readable APK: {name}: {type(exc).__name__}: {exc}") from exc
        return out

    def _info(self, name: str) -> zipfile.ZipInfo | None:
        try:
            return self.zf.getinfo(name)
        except KeyError:
            return None

    def _check_entry(self, name: str, size: int, stated: int | None = None) -> None:
        if size > self.max_entry:
            raise ApkError(f"APK refused: {name} inflates beyond {self.max_entry:,} bytes (FINMON_APK_MAX_ENTRY_BYTES)")
        if stated is not None and size > stated:
            raise ApkError(f"APK refused: {name} inflates beyond the {stated:,} bytes its zip entry states")


def _sha256(file: BinaryIO) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def implied_permissions(requested: set[str], target_sdk: int) -> tuple[str, ...]:
    """Permissions the platform adds to the requested ones for this targetSdk (data/permissions.json)."""
    out = set()
    for row in load_json("permissions.json")["implied"]:
        below = row.get("target_sdk_below")
        if (row["from"] is None or row["from"] in requested) and (below is None or target_sdk < below):
            out.add(row["to"])
    return tuple(sorted(out - requested))


def _manifest(data: bytes):
    """The binary AndroidManifest.xml as an lxml element, or None when it is absent or not binary XML."""
    if not data:
        return None
    try:
        from androguard.core.axml import AXMLPrinter
        from loguru import logger

        logger.disable("androguard")  # it logs every parsing step at DEBUG to stderr
        printer = AXMLPrinter(bytes(data))
        return printer.get_xml_obj() if printer.is_valid() else None
    except Exception as exc:  # androguard raises many kinds on a broken file: one clear error here
        raise ApkError(f"not a readable APK: {type(exc).__name__}: {exc}") from exc


def _attr(element, name: str) -> str | None:
    return None if element is None else element.get(ANDROID + name)


def _literal(value: str | None) -> str:
    """A manifest string given literally; "" when absent or a resource reference (@string/…)."""
    return "" if not value or value.startswith("@") else value


def _bool(value: str | None, default: bool) -> bool:
    """A manifest boolean; absent or a resource reference takes the default."""
    return {"true": True, "false": False}.get((value or "").lower(), default)


def _int(value: str | None, default):
    try:
        return int(value, 0) if value is not None else default
    except ValueError:  # a codename such as "S" or a resource reference
        return default


def _exported_unprotected(app, target_sdk: int, package: str) -> list[dict]:
    if app is None:
        return []
    app_permission = _attr(app, "permission")
    out = []
    for kind in COMPONENTS:
        for comp in app.findall(kind):
            if _bool(_attr(comp, "enabled"), True) is False:
                continue
            filters = comp.findall("intent-filter")
            default = bool(filters) if kind != "provider" else target_sdk <= PROVIDER_EXPORTED_UNTIL
            if not _bool(_attr(comp, "exported"), default) or _is_launcher(filters):
                continue
            permission = _attr(comp, "permission") or app_permission
            if kind == "provider" and not permission:
                guarded = _attr(comp, "readPermission") and _attr(comp, "writePermission")
            else:
                guarded = permission
            if not guarded:
                out.append({"kind": kind, "name": _class_name(_attr(comp, "name") or "", package)})
    return sorted(out, key=lambda c: (c["name"], c["kind"]))


def _class_name(name: str, package: str) -> str:
    """A component's class name as Android resolves it: ".Main" and "Main" are in the app's package."""
    if name.startswith("."):
        return package + name
    return name if "." in name else f"{package}.{name}"


def _is_launcher(filters) -> bool:
    for f in filters:
        names = {_attr(e, "name") for e in f if e.tag in ("action", "category")}
        if set(LAUNCHER) <= names:
            return True
    return False


def dex_classes(dex: bytes | bytearray) -> list[str]:
    """Dotted names of the classes a DEX file defines (from its class_defs, string_ids and type_ids)."""
    if len(dex) < 0x70 or not dex.startswith(b"dex\n"):
        raise ApkError("a classes*.dex entry is not a DEX file")
    try:
        string_ids_off, type_ids_off, class_defs = (struct.unpack_from("<I", dex, 0x3C)[0],
                                                     struct.unpack_from("<I", dex, 0x44)[0],
                                                     struct.unpack_from("<II", dex, 0x60))
        out = []
        for i in range(class_defs[0]):
            type_idx = struct.unpack_from("<I", dex, class_defs[1] + 32 * i)[0]
            string_idx = struct.unpack_from("<I", dex, type_ids_off + 4 * type_idx)[0]
            descriptor = _dex_string(dex, struct.unpack_from("<I", dex, string_ids_off + 4 * string_idx)[0])
            if descriptor.startswith("L") and descriptor.endswith(";"):
                out.append(descriptor[1:-1].replace("/", "."))
        return out
    except (struct.error, IndexError, ValueError) as exc:
        raise ApkError(f"a broken DEX file: {exc}") from exc


def _dex_string(dex: bytes | bytearray, offset: int) -> str:
    """A string_data_item: a ULEB128 length, then MUTF-8 bytes up to a NUL."""
    while dex[offset] & 0x80:  # skip the length
        offset += 1
    end = dex.index(b"\0", offset + 1)
    return bytes(dex[offset + 1:end]).replace(b"\xc0\x80", b"\0").decode("utf-8", errors="surrogatepass")
