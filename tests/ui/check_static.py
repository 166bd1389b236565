#!/usr/bin/env python3
"""Static checks of ui/: CSP-safe markup, every string key defined in all locales, none unused.

Run: python3 tests/ui/check_static.py  (exit 1 on any problem)
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
LOCALES = ["en-US", "zh-CN", "id-ID"]
problems = []

ui_strings = json.loads((UI / "locales" / "ui.json").read_text(encoding="utf-8"))
app_strings = json.loads((UI / "locales" / "app.json").read_text(encoding="utf-8"))
ours = {k: v for k, v in ui_strings.items() if k != "_version"}
known = set(ours) | {k for k in app_strings if k != "_version"}

if ui_strings.get("_version") != 2:
    problems.append("ui.json: _version must be 2")
for key, texts in ours.items():
    if not key.startswith("ui."):
        problems.append(f"ui.json: {key} lacks the ui. prefix")
    for loc in LOCALES:
        if not isinstance(texts.get(loc), str) or not texts[loc].strip():
            problems.append(f"ui.json: {key} has no {loc}")
    names = [sorted(re.findall(r"%\{(\w+)\}", texts.get(loc, ""))) for loc in LOCALES]
    if any(n != names[0] for n in names):
        problems.append(f"ui.json: {key} placeholders differ between locales: {names}")

used = set()
html_files = sorted(UI.glob("*.html"))
for f in html_files:
    text = f.read_text(encoding="utf-8")
    # CSP: no inline scripts, handlers or styles.
    for pattern, what in [
        (r"<script(?![^>]*\bsrc=)[^>]*>", "inline <script>"),
        (r"\son[a-z]+\s*=", "inline event handler"),
        (r"\sstyle\s*=", "style attribute"),
        (r"<style\b", "<style> block"),
        (r"javascript:", "javascript: URL"),
        (r"(src|href)=\"(https?:)?//", "remote resource"),
    ]:
        for m in re.finditer(pattern, text, re.I):
            problems.append(f"{f.name}: {what}: {m.group(0)!r}")
    for m in re.finditer(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', text):
        used.add(m.group(1))
    # Visible text must come from keys: no bare text between tags.
    body = re.sub(r"<(script|title)[^>]*>.*?</\1>", "", text, flags=re.S)
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    body = re.sub(r"<svg.*?</svg>", "", body, flags=re.S)
    for m in re.finditer(r">([^<]+)<", body):
        if m.group(1).strip():
            problems.append(f"{f.name}: hard-coded text {m.group(1).strip()!r}")

for f in sorted(UI.glob("*.js")):
    text = f.read_text(encoding="utf-8")
    if re.search(r"\beval\s*\(|new Function\s*\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write", text):
        problems.append(f"{f.name}: eval/innerHTML-like construct")
    if re.search(r"setAttribute\(\s*['\"]style|\.style\.", text):
        problems.append(f"{f.name}: inline style from script")
    for m in re.finditer(r"['\"`]((?:ui|app)\.[a-z0-9_.]+)['\"`]", text):
        used.add(m.group(1))
    for m in re.finditer(r"`(ui\.[a-z0-9_.]+)\$\{", text):
        prefix = m.group(1)
        used.update(k for k in ours if k.startswith(prefix))

for f in sorted(UI.glob("*.css")):
    text = f.read_text(encoding="utf-8")
    if re.search(r"@import|url\(\s*['\"]?https?:", text):
        problems.append(f"{f.name}: remote CSS resource")

for key in sorted(used - known):
    problems.append(f"key used but not defined: {key}")
# Window titles are read by Rust.
rust_side = {"ui.signin.window_title", "ui.settings.window_title", "ui.provision.window_title", "ui.guide.window_title"}
for key in sorted(set(ours) - used - rust_side):
    problems.append(f"key defined but not used: {key}")

for p in problems:
    print("FAIL", p)
print(f"{len(ours)} ui keys, {len(used)} keys used in {len(html_files)} pages; "
      f"{0 if problems else 1} passed, {1 if problems else 0} failed")
sys.exit(1 if problems else 0)
