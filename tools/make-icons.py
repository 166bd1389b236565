#!/usr/bin/env python3
"""Draws the app icon and the four tray-state icons (PNG), so they can be regenerated, not hand-edited.

Run: python3 tools/make-icons.py  (needs Pillow)."""
from pathlib import Path
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "icons"
BLUE = (22, 119, 255, 255)      # NocoBase blue
GREEN = (7, 193, 96, 255)       # WeCom green
GREY = (140, 140, 140, 255)
AMBER = (250, 173, 20, 255)
RED = (245, 34, 45, 255)


def badge(size, fill, dot=None):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    r = size // 5
    d.rounded_rectangle([0, 0, size - 1, size - 1], radius=r, fill=fill)
    # a stylised "N" for NocoBase
    w = max(2, size // 9)
    m = size // 4
    white = (255, 255, 255, 255)
    d.line([(m, size - m), (m, m)], fill=white, width=w)
    d.line([(m, m), (size - m, size - m)], fill=white, width=w)
    d.line([(size - m, size - m), (size - m, m)], fill=white, width=w)
    if dot:
        s = size // 3
        d.ellipse([size - s - 1, size - s - 1, size - 1, size - 1], fill=dot, outline=white, width=max(1, size // 32))
    return img


def main():
    OUT.mkdir(exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        badge(size, BLUE).save(OUT / name)
    badge(256, BLUE).save(OUT / "icon.ico", sizes=[(16, 16), (32, 32), (48, 48), (256, 256)])
    for name, fill, dot in [
        ("tray-signed-out.png", GREY, None),
        ("tray-signing-in.png", BLUE, AMBER),
        ("tray-signed-in.png", BLUE, GREEN),
        ("tray-attention.png", GREY, RED),
    ]:
        badge(64, fill, dot).save(OUT / name)


if __name__ == "__main__":
    main()
