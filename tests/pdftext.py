"""Reading a PDF the app wrote, as a person would see it, without a PDF library: the text drawn with the
embedded CID font (decoded through its ToUnicode map), the links, and the embedded font programs."""
from __future__ import annotations

import re
import zlib

_OBJECT = re.compile(rb"obj\s*(<<.*?>>)\s*stream\r?\n(.*?)\r?\nendstream", re.S)
_PAIR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_RANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_SHOW = re.compile(rb"\((?P<s>(?:\\.|[^\\)])*)\)\s*Tj|\[(?P<a>.*?)\]\s*TJ", re.S)
_LITERAL = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def streams(pdf: bytes) -> list[tuple[bytes, bytes]]:
    """(dictionary, decoded data) of every stream object."""
    out = []
    for match in _OBJECT.finditer(pdf):
        head, data = match.group(1), match.group(2)
        if b"/FlateDecode" in head:
            data = zlib.decompressobj().decompress(data)
        out.append((head, data))
    return out


def _unescape(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i:i + 1] == b"\\" and i + 1 < len(raw):
            nxt = raw[i + 1:i + 2]
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def text(pdf: bytes) -> str:
    """All text shown, in drawing order (a CID font: 2-byte codes mapped by ToUnicode)."""
    cmap: dict[int, str] = {}
    found = streams(pdf)
    for _head, data in found:
        if b"beginbfchar" in data or b"beginbfrange" in data:
            for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
                for lo, hi, dst in _RANGE.findall(block):
                    for n, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                        cmap[code] = chr(int(dst, 16) + n)
            for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
                for src, dst in _PAIR.findall(block):
                    cmap[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    shown = []
    for head, data in found:
        if b"BT" not in data or b"begincmap" in data:
            continue
        for match in _SHOW.finditer(data):
            parts = [match.group("s")] if match.group("s") is not None else _LITERAL.findall(match.group("a"))
            for part in parts:
                raw = _unescape(part)
                shown.append("".join(cmap.get(int.from_bytes(raw[i:i + 2], "big"), "?") for i in range(0, len(raw) - 1, 2)))
    return "".join(shown)


def links(pdf: bytes) -> list[str]:
    return [uri.decode() for uri in re.findall(rb"/URI \(([^)]*)\)", pdf)]
