"""PNG by hand (no Pillow) for the screenshot tests: write a solid-colour PNG, decode a
Chromium screenshot, count pixels of one colour."""

from __future__ import annotations

import struct
import zlib


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    scanline = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(scanline * height)) + chunk(b"IEND", b""))


def decode_png(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unsupported PNG flavour"
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    data = zlib.decompress(b"".join(idat))
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        filter_type = data[start]
        line = bytearray(data[start + 1:start + 1 + stride])
        # Undo the PNG row filters (PNG spec, section 9).
        if filter_type == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif filter_type == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif filter_type == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filter_type == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 0xFF
        previous = line
        if bpp == 4:
            rows.append(bytes(b for i in range(0, stride, 4) for b in line[i:i + 3]))
        else:
            rows.append(bytes(line))
    return width, height, rows


def pixels_of(image, colour: str, box: tuple[int, int, int, int]) -> int:
    """How many pixels inside box (x, y, width, height) are exactly the CSS colour #rrggbb."""
    width, height, rows = image
    rgb = bytes.fromhex(colour[1:])
    x0, y0, w, h = box
    found = 0
    for y in range(max(y0, 0), min(y0 + h, height)):
        row = rows[y]
        for x in range(max(x0, 0), min(x0 + w, width)):
            if row[3 * x:3 * x + 3] == rgb:
                found += 1
    return found


def count_pixels(png: bytes, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the whole PNG are exactly ``rgb``."""
    width, height, rows = decode_png(png)
    return pixels_of((width, height, rows), "#" + bytes(rgb).hex(), (0, 0, width, height))
