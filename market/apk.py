"""Small but real Android APKs (binary manifest, DEX, zip) built deterministically from a spec, stdlib only."""
from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import escape

ANDROID_NS = "http://schemas.android.com/apk/res/android"
# Framework resource ids of the android: attributes used here (R.attr; as `aapt dump xmltree` shows them).
ATTR_IDS = {
    "label": 0x01010001, "name": 0x01010003, "permission": 0x01010006, "readPermission": 0x01010007,
    "writePermission": 0x01010008, "debuggable": 0x0101000F, "exported": 0x01010010, "authorities": 0x01010018,
    "minSdkVersion": 0x0101020C, "versionCode": 0x0101021B, "versionName": 0x0101021C,
    "targetSdkVersion": 0x01010270, "maxSdkVersion": 0x01010271, "allowBackup": 0x01010280,
    "usesCleartextTraffic": 0x010104EC,
}
KINDS = ("activity", "service", "receiver", "provider")


@dataclass(frozen=True)
class Component:
    """An <activity>, <service>, <receiver> or <provider>; None attributes are left out of the manifest."""

    kind: str
    name: str
    exported: bool | None = None
    permission: str | None = None
    actions: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    authorities: str | None = None
    read_permission: str | None = None
    write_permission: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"component kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind != "provider" and (self.authorities or self.read_permission or self.write_permission):
            raise ValueError(f"authorities and read/write permissions are for providers only ({self.name})")


@dataclass(frozen=True)
class ApkSpec:
    """What an APK declares: package, versions, SDKs, permissions, <application> flags, components, classes."""

    package: str
    version_name: str = "1.0"
    version_code: int = 1
    min_sdk: int = 21
    target_sdk: int = 33
    label: str = ""  # literal <application android:label>; "" = attribute absent
    permissions: tuple[str, ...] = ()
    permissions_max_sdk: tuple[tuple[str, int], ...] = ()  # (permission, android:maxSdkVersion)
    debuggable: bool | None = None
    allow_backup: bool | None = None
    uses_cleartext_traffic: bool | None = None
    application_permission: str | None = None
    components: tuple[Component, ...] = ()
    classes: tuple[str, ...] = ()  # dotted names of the empty classes in classes.dex


# --- the manifest as an element tree: (tag, [(attribute, value)], [children]); "android:" marks the namespace


def _element(tag: str, attrs: dict[str, str | int | bool | None], children: Iterable = ()) -> tuple:
    return tag, [(k, v) for k, v in attrs.items() if v is not None], list(children)


def _component(c: Component) -> tuple:
    attrs = {"android:name": c.name, "android:exported": c.exported, "android:permission": c.permission,
             "android:authorities": c.authorities, "android:readPermission": c.read_permission,
             "android:writePermission": c.write_permission}
    filters = [_element("action", {"android:name": a}) for a in c.actions]
    filters += [_element("category", {"android:name": a}) for a in c.categories]
    return _element(c.kind, attrs, [_element("intent-filter", {}, filters)] if filters else [])


def _manifest(spec: ApkSpec) -> tuple:
    permissions = [_element("uses-permission", {"android:name": p}) for p in spec.permissions]
    permissions += [_element("uses-permission", {"android:name": p, "android:maxSdkVersion": n})
                    for p, n in spec.permissions_max_sdk]
    application = _element("application", {
        "android:label": spec.label or None, "android:debuggable": spec.debuggable,
        "android:allowBackup": spec.allow_backup, "android:usesCleartextTraffic": spec.uses_cleartext_traffic,
        "android:permission": spec.application_permission}, map(_component, spec.components))
    uses_sdk = _element("uses-sdk", {"android:minSdkVersion": spec.min_sdk,
                                     "android:targetSdkVersion": spec.target_sdk})
    return _element("manifest", {"package": spec.package, "android:versionCode": spec.version_code,
                                 "android:versionName": spec.version_name}, [uses_sdk, *permissions, application])


def _walk(element: tuple, depth: int = 0) -> Iterator[tuple[str, tuple, int]]:
    """(event, element, depth), one event per line of the text manifest: "start"/"end", or "empty" (self-closing)."""
    if not element[2]:
        yield "empty", element, depth
        return
    yield "start", element, depth
    for child in element[2]:
        yield from _walk(child, depth + 1)
    yield "end", element, depth


def _text(value: str | int | bool) -> str:
    """An attribute value as aapt reads it: XML-escaped, with backslashes and a leading @ or ? escaped for aapt."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    value = value.replace("\\", "\\\\")
    value = "\\" + value if value[:1] in ("@", "?") else value
    return escape(value, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def manifest_xml(spec: ApkSpec) -> str:
    """The AndroidManifest.xml as text, one tag per line (line numbers match those in `binary_manifest`)."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    for event, (tag, attrs, _), depth in _walk(_manifest(spec)):
        if event == "end":
            lines.append(f"{'    ' * depth}</{tag}>")
            continue
        xmlns = f' xmlns:android="{ANDROID_NS}"' if tag == "manifest" else ""
        text = "".join(f' {k}="{_text(v)}"' for k, v in attrs)
        lines.append(f"{'    ' * depth}<{tag}{xmlns}{text}{'/' if event == 'empty' else ''}>")
    return "\n".join(lines) + "\n"


# --- Android binary XML (frameworks/base/libs/androidfw/include/androidfw/ResourceTypes.h)

NO_INDEX = 0xFFFFFFFF
TYPE_STRING, TYPE_INT_DEC, TYPE_INT_BOOLEAN = 0x03, 0x10, 0x12


def _chunk(kind: int, header: bytes, body: bytes) -> bytes:
    """A ResChunk_header (type, header size, total size) followed by the rest of the header and the body."""
    return struct.pack("<HHI", kind, 8 + len(header), 8 + len(header) + len(body)) + header + body


def _string_pool(strings: list[str]) -> bytes:
    """A UTF-16 ResStringPool without styles."""
    offsets, data = [], b""
    for s in strings:
        encoded = s.encode("utf-16-le")
        n = len(encoded) // 2  # in UTF-16 code units; from 0x8000 on, two units with the high bit set in the first
        length = struct.pack("<H", n) if n < 0x8000 else struct.pack("<HH", 0x8000 | n >> 16, n & 0xFFFF)
        offsets.append(len(data))
        data += length + encoded + b"\0\0"
    data += b"\0" * (-len(data) % 4)
    header = struct.pack("<5I", len(strings), 0, 0, 28 + 4 * len(strings), 0)
    return _chunk(0x0001, header, struct.pack(f"<{len(strings)}I", *offsets) + data)


def _local(key: str) -> str:
    """An attribute's name without the android: prefix."""
    return key.removeprefix("android:")


def _ordered(attrs: list[tuple[str, str | int | bool]]) -> list[tuple[str, str | int | bool]]:
    """Attributes as aapt writes them: android: ones by resource id, then the others in their order."""
    return sorted(attrs, key=lambda a: ATTR_IDS.get(_local(a[0]), 1 << 32))


def _typed(value: str | int | bool, index: dict[str, int]) -> tuple[int, int, int]:
    """An attribute value as (raw string index, Res_value type, Res_value data)."""
    if isinstance(value, bool):
        return NO_INDEX, TYPE_INT_BOOLEAN, 0xFFFFFFFF if value else 0
    if isinstance(value, int):
        return NO_INDEX, TYPE_INT_DEC, value & 0xFFFFFFFF
    return index[value], TYPE_STRING, index[value]


def binary_manifest(spec: ApkSpec) -> bytes:
    """`manifest_xml` compiled to binary XML as aapt does, less the SDK attributes aapt adds to <manifest>."""
    events = list(_walk(_manifest(spec)))
    ordered = [(event, tag, _ordered(attrs)) for event, (tag, attrs, _), _ in events]
    names = [_local(k) for _, _, attrs in ordered for k, _ in attrs if k != _local(k)]
    others = []
    for _, tag, attrs in ordered:
        others += [tag, *(k for k, _ in attrs if k == _local(k)), *(v for _, v in attrs if isinstance(v, str))]
    strings = list(dict.fromkeys(names))  # the attribute names with a resource id come first, for the resource map
    resource_map = struct.pack(f"<{len(strings)}I", *(ATTR_IDS[s] for s in strings))
    strings = list(dict.fromkeys(strings + ["android", ANDROID_NS] + others))
    index = {s: i for i, s in enumerate(strings)}
    namespace = struct.pack("<II", index["android"], index[ANDROID_NS])
    nodes = [_chunk(0x0100, struct.pack("<II", 2, NO_INDEX), namespace)]
    for line, (event, tag, attrs) in enumerate(ordered, start=2):
        if event != "end":
            body = struct.pack("<IIHHHHHH", NO_INDEX, index[tag], 20, 20, len(attrs), 0, 0, 0)
            for key, value in attrs:
                namespace_index = NO_INDEX if key == _local(key) else index[ANDROID_NS]
                raw, kind, data = _typed(value, index)
                body += struct.pack("<IIIHBBI", namespace_index, index[_local(key)], raw, 8, 0, kind, data)
            nodes.append(_chunk(0x0102, struct.pack("<II", line, NO_INDEX), body))
        if event != "start":
            nodes.append(_chunk(0x0103, struct.pack("<II", line, NO_INDEX), struct.pack("<II", NO_INDEX, index[tag])))
    nodes.append(_chunk(0x0101, struct.pack("<II", len(events) + 1, NO_INDEX), namespace))
    return _chunk(0x0003, b"", _string_pool(strings) + _chunk(0x0180, b"", resource_map) + b"".join(nodes))


# --- DEX 035 (https://source.android.com/docs/core/runtime/dex-format)

OBJECT = "Ljava/lang/Object;"


def _uleb128(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _utf16(s: str) -> tuple[int, ...]:
    """The UTF-16 code units of a string."""
    return struct.unpack(f">{len(s.encode('utf-16-be')) // 2}H", s.encode("utf-16-be"))


def _mutf8(s: str) -> bytes:
    """Modified UTF-8: UTF-16 code units one by one, NUL as two bytes."""
    out = b""
    for u in _utf16(s):
        if 0 < u < 0x80:
            out += bytes([u])
        elif u < 0x800:
            out += bytes([0xC0 | u >> 6, 0x80 | u & 0x3F])
        else:
            out += bytes([0xE0 | u >> 12, 0x80 | u >> 6 & 0x3F, 0x80 | u & 0x3F])
    return out


def descriptor(name: str) -> str:
    """The type descriptor of a dotted class name: com.a.B$C → Lcom/a/B$C;."""
    return "L" + name.replace(".", "/") + ";"


def dex(classes: Iterable[str]) -> bytes:
    """A DEX 035 file declaring one empty public class (extending java.lang.Object) per dotted name."""
    types = {descriptor(c) for c in classes}
    if OBJECT in types:
        raise ValueError("java.lang.Object is the superclass of every class here, it cannot be one of them")
    # string_ids are sorted by UTF-16 code units; every string here is a type, so type_ids share their order
    strings = sorted(types | {OBJECT}, key=_utf16) if types else []
    ids_off = 0x70
    class_defs_off = ids_off + 8 * len(strings)
    data_off = class_defs_off + 32 * len(types)
    string_data, offsets = b"", []
    for s in strings:
        offsets.append(data_off + len(string_data))
        string_data += _uleb128(len(_utf16(s))) + _mutf8(s) + b"\0"
    map_off = data_off + len(string_data) + (-len(string_data) % 4)
    sections = [(0x0000, 1, 0), (0x0001, len(strings), ids_off), (0x0002, len(strings), ids_off + 4 * len(strings)),
                (0x0006, len(types), class_defs_off), (0x2002, len(strings), data_off), (0x1000, 1, map_off)]
    sections = [s for s in sections if s[1]]
    map_list = struct.pack("<I", len(sections)) + b"".join(struct.pack("<HHII", t, 0, n, o) for t, n, o in sections)
    file_size = map_off + len(map_list)
    index = {s: i for i, s in enumerate(strings)}
    body = struct.pack(f"<{2 * len(strings)}I", *offsets, *range(len(strings)))
    # class_def: class, ACC_PUBLIC, superclass, no interfaces, no source file, no annotations, data or static values
    body += b"".join(struct.pack("<8I", index[t], 1, index[OBJECT], 0, NO_INDEX, 0, 0, 0)
                     for t in strings if t in types)
    body += string_data.ljust(map_off - data_off, b"\0") + map_list
    at = {t: o for t, _, o in sections}  # offsets of the sections present; 0 for empty ones
    header = struct.pack("<20I", file_size, 0x70, 0x12345678, 0, 0, map_off, len(strings), at.get(0x0001, 0),
                         len(strings), at.get(0x0002, 0), 0, 0, 0, 0, 0, 0, len(types), at.get(0x0006, 0),
                         file_size - data_off, data_off)
    signed = header + body
    signature = hashlib.sha1(signed).digest()
    checksum = zlib.adler32(signature + signed)
    return b"dex\n035\0" + struct.pack("<I", checksum) + signature + signed


# --- the APK

JAR_MANIFEST = b"Manifest-Version: 1.0\r\nCreated-By: finapp-monitor\r\n\r\n"


@lru_cache(maxsize=4096)  # a store serves the files it has (about 4 KB each): built once, not at every download
def build_apk(spec: ApkSpec) -> bytes:
    """A zip with AndroidManifest.xml (binary), classes.dex and META-INF/MANIFEST.MF; same spec, same bytes."""
    entries = {"AndroidManifest.xml": binary_manifest(spec), "classes.dex": dex(spec.classes),
               "META-INF/MANIFEST.MF": JAR_MANIFEST}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as apk:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o644 << 16  # as on Unix, wherever it is built
            apk.writestr(info, entries[name])  # stored: deflate output varies between zlib builds
    return buffer.getvalue()


ZIP_BOMB_MAX = 0xFFFF_FFFF  # what a zip entry without zip64 can state
_ZEROS = bytes(1024 * 1024)


@lru_cache(maxsize=4)
def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """(raw deflate stream, CRC-32) of ``size`` zero bytes."""
    whole, rest = divmod(size, len(_ZEROS))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = deflate.compress(_ZEROS) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(_ZEROS) + deflate.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every further MB
    crc = 0
    for _ in range(whole):
        crc = zlib.crc32(_ZEROS, crc)
    crc = zlib.crc32(_ZEROS[:rest], crc)
    head = first + block * (whole - 1) if whole else b""
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    return head + tail.compress(_ZEROS[:rest]) + tail.flush(), crc


def zip_bomb(spec: ApkSpec, inflated_bytes: int) -> bytes:
    """An APK with the spec's manifest whose classes.dex is ``inflated_bytes`` of zeros, deflated.

    About 1 KB per inflated MB (1 GB → ~1 MB), built without ever holding the inflated bytes: each MB of
    zeros deflates, after a full flush, to the same block, which is repeated. The zip states the true sizes.
    """
    if not 0 < inflated_bytes <= ZIP_BOMB_MAX:
        raise ValueError(f"inflated_bytes must be in 1..{ZIP_BOMB_MAX}")
    compressed, crc = _deflated_zeros(inflated_bytes)
    manifest = binary_manifest(spec)
    entries = [("AndroidManifest.xml", 0, manifest, len(manifest), zlib.crc32(manifest)),
               ("classes.dex", 8, compressed, inflated_bytes, crc)]
    local, central = io.BytesIO(), io.BytesIO()
    for name, method, data, size, checksum in entries:
        offset, encoded = local.tell(), name.encode()
        fields = struct.pack("<HHHHIIIHH", 0, method, 0, 0x21, checksum, len(data), size, len(encoded), 0)
        local.write(b"PK\x03\x04" + struct.pack("<H", 20) + fields + encoded + data)
        central.write(b"PK\x01\x02" + struct.pack("<HH", 0x0314, 20) + fields
                      + struct.pack("<HHHII", 0, 0, 0, 0o644 << 16, offset) + encoded)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), central.tell(), local.tell(), 0)
    return local.getvalue() + central.getvalue() + end
