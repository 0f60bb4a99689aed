"""Checks a headless-Chromium screenshot of the protsae report: the feature cards rendered.

usage: report_png.py SHOT.png N_CARDS_IN_DOM
A card is a box with a 1px #ddd border as wide as the page column; inside it, the activation
histogram's bars (#4a7ab5) and dark text. Decodes the PNG with zlib only (no PIL on the machine).
"""
import struct, sys, zlib

def read_png(path):
    b = open(path, 'rb').read()
    assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, w = 8, b'', None
    while pos < len(b):
        n, typ = struct.unpack('>I4s', b[pos:pos + 8])
        data = b[pos + 8:pos + 8 + n]
        if typ == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', data)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, f'unsupported PNG {depth} {ctype} {interlace}'
            bpp = 3 if ctype == 2 else 4
        elif typ == b'IDAT':
            idat += data
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            p = prev[i]
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + p) & 255
            elif f == 3: line[i] = (line[i] + ((a + p) >> 1)) & 255
            elif f == 4:
                pa, pb, pc = abs(p - c), abs(a - c), abs(a + p - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else p if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows

w, h, bpp, rows = read_png(sys.argv[1])
n_dom = int(sys.argv[2])
px = lambda y, x: tuple(rows[y][x * bpp:x * bpp + 3])
near = lambda c, t, tol=6: all(abs(c[i] - t[i]) <= tol for i in range(3))
# horizontal card borders: long runs of #ddd
pat = (b'\xdd\xdd\xdd' + (b'\xff' if bpp == 4 else b'')) * 600
blue_px = b'\x4a\x7a\xb5' + (b'\xff' if bpp == 4 else b'')
borders = [y for y in range(h) if pat in rows[y]]
# group adjacent rows; pair tops with bottoms
lines = [y for i, y in enumerate(borders) if i == 0 or borders[i - 1] != y - 1]
boxes = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
full = []
for top, bot in boxes:
    blue = sum(rows[y].count(blue_px) for y in range(top + 1, bot))
    dark = sum(1 for y in range(top + 1, bot, 2) for x in range(0, w, 2) if max(px(y, x)) < 90)
    if blue > 400 and dark > 300:
        full.append((top, bot, blue, dark))
print(f'screenshot {w}x{h}: {len(lines)} card border lines, {len(full)} boxes with histogram bars and text '
      f'(first at y={full[0][0] if full else -1}); {n_dom} cards in the DOM')
assert full, 'no rendered feature card (bordered box with histogram bars and text) in the screenshot'
assert len(full) >= min(n_dom, 2), 'fewer rendered cards than expected'
