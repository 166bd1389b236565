#!/usr/bin/env python3
"""Looks at every window in headless Chromium against the mock bridge.

For each case: loads the page (with tests/ui/mock-tauri.js), runs the scripted steps,
reads the report the mock leaves on <html data-report>, checks it, and takes a screenshot
to look at. Needs Debian's `chromium`.

Run: python3 tests/ui/run.py [--out DIR] [--only SUBSTRING]
"""
import argparse
import html
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import serve  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

SIGNIN = (440, 640)
SETTINGS = (560, 1500)
PROVISION = (480, 520)
GUIDE = (520, 760)


def case(name, page, size, expect=None, **query):
    return {"name": name, "page": page, "size": size, "expect": expect or {}, "query": query}


CASES = [
    # Sign-in window.
    case("signin-device-zh", "signin", SIGNIN, {"visible": ["device-view", "qr", "user-code", "time-left", "first-time-hint", "browser-signed-in-note", "use-browser"], "calls": ["signin_start", "signin_wait"]}, scenario="device", lang="zh-CN"),
    case("signin-device-en", "signin", SIGNIN, {"visible": ["device-view", "first-time-hint"]}, scenario="device", lang="en-US"),
    case("signin-device-id", "signin", SIGNIN, {"visible": ["device-view"]}, scenario="device", lang="id-ID"),
    case("signin-device-returning-en", "signin", SIGNIN, {"visible": ["device-view"], "hidden": ["first-time-hint"]}, scenario="device-returning", lang="en-US"),
    case("signin-device-countdown-expired-zh", "signin", SIGNIN, {"visible": ["expired-view", "refresh-qr"], "hidden": ["device-view"]}, scenario="device-expiring", lang="zh-CN", budget=6000, settle="4000"),
    case("signin-expired-zh", "signin", SIGNIN, {"visible": ["expired-view", "refresh-qr"]}, scenario="expired", lang="zh-CN"),
    case("signin-expired-refresh-en", "signin", SIGNIN, {"visible": ["device-view", "qr"], "hidden": ["expired-view"], "calls_count": {"signin_start": 2}, "not_closed": True}, scenario="expired", lang="en-US", once="1", act="wait:600,click:refresh-qr,wait:300"),
    case("signin-use-browser-zh", "signin", SIGNIN, {"visible": ["browser-view", "cancel", "first-time-link"], "calls": ['signin_start {"method":"browser"}'], "not_closed": True}, scenario="device", lang="zh-CN", act="click:use-browser,wait:300"),
    case("signin-browser-en", "signin", SIGNIN, {"visible": ["browser-view", "first-time-link", "cancel"], "hidden": ["slow-hint"]}, scenario="browser", lang="en-US"),
    case("signin-browser-slow-zh", "signin", SIGNIN, {"visible": ["browser-view", "slow-hint", "first-time-link"], "class": {"first-time-link": "emphasised"}}, scenario="browser", lang="zh-CN", budget=70000, settle="61000"),
    case("signin-browser-nobrowser-id", "signin", SIGNIN, {"visible": ["authorize-url", "copy-link"]}, scenario="browser", lang="id-ID", act="open:no-browser-details"),
    case("signin-browser-guide", "signin", SIGNIN, {"calls": ["guide_open"]}, scenario="browser", lang="en-US", act="click:first-time-link"),
    case("signin-browser-cancel", "signin", SIGNIN, {"calls": ["signin_cancel"], "closed": True}, scenario="browser", lang="en-US", act="click:cancel"),
    case("signin-embedded-zh", "signin", SIGNIN, {"visible": ["embedded-view"]}, scenario="embedded", lang="zh-CN"),
    case("signin-signed-in-zh", "signin", SIGNIN, {"visible": ["signed-in", "open-workbench", "close"]}, scenario="signed-in", lang="zh-CN"),
    case("signin-signed-in-en", "signin", SIGNIN, {"visible": ["signed-in", "open-workbench"]}, scenario="signed-in", lang="en-US"),
    case("signin-open-workbench", "signin", SIGNIN, {"calls": ['workbench_open {"mobile":false}'], "closed": True}, scenario="signed-in", lang="en-US", act="wait:600,click:open-workbench"),
    case("signin-workbench-error-zh", "signin", SIGNIN, {"visible": ["signed-in", "workbench-error"], "not_closed": True}, scenario="workbench-error", lang="zh-CN", act="wait:600,click:open-workbench"),
    case("signin-error-en", "signin", SIGNIN, {"visible": ["error-view", "error", "retry"], "hidden": ["first-login-guide"]}, scenario="error", lang="en-US"),
    case("signin-error-zh", "signin", SIGNIN, {"visible": ["error-view", "error", "retry"]}, scenario="error", lang="zh-CN"),
    case("signin-first-login-zh", "signin", SIGNIN, {"visible": ["error-view", "error", "first-login-guide", "retry"]}, scenario="first-login", lang="zh-CN"),
    case("signin-first-login-guide", "signin", SIGNIN, {"calls": ["guide_open"]}, scenario="first-login", lang="en-US", act="wait:600,click:first-login-guide"),
    case("signin-retry", "signin", SIGNIN, {"calls_count": {"signin_start": 2}}, scenario="error", lang="en-US", once="1", act="wait:600,click:retry"),
    case("signin-cancelled", "signin", SIGNIN, {"closed": True, "calls": ["window_close"]}, scenario="cancelled", lang="en-US"),
    case("signin-start-error-zh", "signin", SIGNIN, {"visible": ["error-view", "error", "retry"]}, scenario="start-error", lang="zh-CN"),
    case("signin-device-dark-zh", "signin", SIGNIN, {"visible": ["device-view"]}, scenario="device", lang="zh-CN", dark=True),
    case("signin-signed-in-dark-en", "signin", SIGNIN, {"visible": ["signed-in"]}, scenario="signed-in", lang="en-US", dark=True),
    case("signin-device-2x-en", "signin", SIGNIN, {"visible": ["device-view"]}, scenario="device", lang="en-US", scale=2),
    case("signin-device-narrow-id", "signin", (360, 640), {"visible": ["device-view"]}, scenario="device", lang="id-ID"),
    # Settings window.
    case("settings-en", "settings", SETTINGS, {"visible": ["profile-select", "add-profile", "remove-profile", "origin", "check-server", "name", "desktop-path", "mobile-path", "home-link", "method", "save", "language", "autostart", "active-badge"], "hidden": ["use-profile", "server-check", "form-error"]}, scenario="settings", lang="en-US"),
    case("settings-zh", "settings", SETTINGS, {"visible": ["profile-select", "authenticator-field"]}, scenario="settings", lang="zh-CN"),
    case("settings-check-one-zh", "settings", SETTINGS, {"visible": ["server-check"], "hidden": ["authenticator", "authenticator-field"], "calls": ['server_check {"origin":"https://nocobase.example.com"}']}, scenario="settings", lang="zh-CN", act="click:check-server,wait:300"),
    case("settings-several-wecom-zh", "settings", SETTINGS, {"visible": ["server-check", "authenticator"]}, scenario="settings-several-wecom", lang="zh-CN", act="click:check-server,wait:300"),
    case("settings-several-wecom-en", "settings", SETTINGS, {"visible": ["server-check", "authenticator"]}, scenario="settings-several-wecom", lang="en-US", act="click:check-server,wait:300"),
    case("settings-no-wecom-zh", "settings", SETTINGS, {"visible": ["server-check"]}, scenario="settings-no-wecom", lang="zh-CN", act="click:check-server,wait:300"),
    case("settings-unreachable-en", "settings", SETTINGS, {"visible": ["server-check"]}, scenario="settings-unreachable", lang="en-US", act="type:origin:nocobase.bad.example,click:check-server,wait:300"),
    case("settings-empty-zh", "settings", SETTINGS, {"visible": ["no-profiles", "origin", "save"], "hidden": ["picker", "remove-profile"]}, scenario="settings-empty", lang="zh-CN"),
    case("settings-add-save-en", "settings", SETTINGS, {"visible": ["form-saved"], "calls": ["server_check", '"previousName":null', '"authenticator":"wecom"', '"name":"nb"']}, scenario="settings", lang="en-US", act="click:add-profile,type:origin:https://nb.example.org,click:save,wait:500"),
    case("settings-add-several-needs-choice", "settings", SETTINGS, {"visible": ["form-error", "authenticator"], "calls_absent": ["profile_save"]}, scenario="settings-several-wecom", lang="zh-CN", act="click:add-profile,type:origin:https://nb.example.org,click:save,wait:500"),
    case("settings-edit-save", "settings", SETTINGS, {"visible": ["form-saved"], "calls": ['"previousName":"work"', '"authenticator":"wecom"', '"homeLink":""', '"method":"device"'], "calls_absent": ["server_check"]}, scenario="settings", lang="en-US", act="select:method:device,click:save,wait:400"),
    case("settings-save-error-zh", "settings", SETTINGS, {"visible": ["form-error"]}, scenario="settings-save-error", lang="zh-CN", act="type:desktop-path://evil,click:save,wait:300"),
    case("settings-remove-confirm-zh", "settings", SETTINGS, {"visible": ["remove-confirm", "remove-confirm-yes", "remove-confirm-no"], "calls_absent": ["profile_remove"]}, scenario="settings", lang="zh-CN", act="click:remove-profile"),
    case("settings-remove-done", "settings", SETTINGS, {"visible": ["profile-message"], "hidden": ["remove-confirm"], "calls": ['profile_remove {"name":"work"}']}, scenario="settings", lang="en-US", act="click:remove-profile,click:remove-confirm-yes,wait:300"),
    case("settings-use-other-zh", "settings", SETTINGS, {"visible": ["active-badge", "profile-message"], "hidden": ["use-profile"], "calls": ['profile_use {"name":"test"}']}, scenario="settings", lang="zh-CN", act="select:profile-select:test,click:use-profile,wait:300"),
    case("settings-other-profile-en", "settings", SETTINGS, {"visible": ["use-profile"], "hidden": ["active-badge"]}, scenario="settings", lang="en-US", act="select:profile-select:test"),
    case("settings-language-to-zh", "settings", SETTINGS, {"lang": "zh-CN", "calls": ['language_set {"language":"zh-CN"}', "ui_strings"]}, scenario="settings", lang="en-US", act="select:language:zh-CN,wait:300"),
    case("settings-autostart-off", "settings", SETTINGS, {"calls": ['autostart_set {"enabled":false}']}, scenario="settings", lang="en-US", act="check:autostart:off"),
    case("settings-autostart-error-id", "settings", SETTINGS, {"visible": ["general-error"]}, scenario="autostart-error", lang="id-ID", act="check:autostart:off"),
    case("settings-dark-zh", "settings", SETTINGS, {"visible": ["profile-select"]}, scenario="settings-several-wecom", lang="zh-CN", dark=True, act="click:check-server,wait:300"),
    case("settings-narrow-zh", "settings", (360, 1700), {"visible": ["profile-select"]}, scenario="settings", lang="zh-CN"),
    # Provisioning window.
    case("provision-zh", "provision", PROVISION, {"visible": ["p-origin", "p-authenticator", "p-desktop", "p-mobile", "p-home", "apply", "cancel"], "hidden": ["replace-warning"]}, scenario="provision", lang="zh-CN"),
    case("provision-existing-en", "provision", PROVISION, {"visible": ["replace-warning", "apply"]}, scenario="provision-existing", lang="en-US"),
    case("provision-existing-zh", "provision", PROVISION, {"visible": ["replace-warning"]}, scenario="provision-existing", lang="zh-CN"),
    case("provision-auto-id", "provision", PROVISION, {"visible": ["p-authenticator"]}, scenario="provision-auto", lang="id-ID"),
    case("provision-apply", "provision", PROVISION, {"calls": ["provision_apply"], "closed": True}, scenario="provision", lang="en-US", act="click:apply"),
    case("provision-apply-error-zh", "provision", PROVISION, {"visible": ["apply-error", "apply"]}, scenario="provision-apply-error", lang="zh-CN", act="click:apply,wait:200"),
    case("provision-cancel", "provision", PROVISION, {"calls": ["provision_cancel"], "closed": True}, scenario="provision", lang="en-US", act="click:cancel"),
    case("provision-error-en", "provision", PROVISION, {"visible": ["error-view", "load-error"]}, scenario="provision-error", lang="en-US"),
    case("provision-dark-zh", "provision", PROVISION, {"visible": ["p-origin"]}, scenario="provision-existing", lang="zh-CN", dark=True),
    # First-time authorization guide.
    case("guide-zh", "guide", GUIDE, {"visible": ["close"]}, scenario="guide", lang="zh-CN"),
    case("guide-en", "guide", GUIDE, {"visible": ["close"]}, scenario="guide", lang="en-US"),
    case("guide-close", "guide", GUIDE, {"closed": True}, scenario="guide", lang="en-US", act="click:close"),
]


def chromium(args, user_dir):
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={user_dir}"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def check(c, report):
    e = c["expect"]
    problems = []
    vis = set(report["visibleIds"])
    for i in e.get("visible", []):
        if i not in vis:
            problems.append(f"#{i} not visible")
    for i in e.get("hidden", []):
        if i in vis:
            problems.append(f"#{i} visible")
    calls = "\n".join(report["calls"])
    for s in e.get("calls", []):
        if s not in calls:
            problems.append(f"no call matching {s!r}")
    for s in e.get("calls_absent", []):
        if s in calls:
            problems.append(f"unexpected call {s!r}")
    for cmd, n in e.get("calls_count", {}).items():
        got = sum(1 for x in report["calls"] if x.split(" ")[0] == cmd)
        if got != n:
            problems.append(f"{cmd} called {got} times, wanted {n}")
    if e.get("closed") and not report["closed"]:
        problems.append("window not closed")
    if e.get("not_closed") and report["closed"]:
        problems.append("window closed")
    if "lang" in e and report["lang"] != e["lang"]:
        problems.append(f"lang {report['lang']}")
    for el, cls in e.get("class", {}).items():
        if cls not in report.get("classes", {}).get(el, ""):
            problems.append(f"#{el} lacks class {cls}")
    if report["violations"]:
        problems.append(f"CSP violations: {report['violations']}")
    if report["errors"]:
        problems.append(f"errors: {report['errors']}")
    if report["untranslated"]:
        problems.append(f"untranslated keys on screen: {report['untranslated']}")
    if not report["title"] or report["title"].startswith("ui."):
        problems.append(f"title {report['title']!r}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("UI_SHOTS", "/tmp/ui-shots"))
    ap.add_argument("--only", default="")
    ap.add_argument("--no-shots", action="store_true")
    opts = ap.parse_args()
    out = pathlib.Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)

    server = serve.http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            if opts.only and opts.only not in c["name"]:
                continue
            q = dict(c["query"])
            budget = int(q.pop("budget", 4000))
            dark = q.pop("dark", False)
            scale = q.pop("scale", 1)
            url = f"{base}/{c['page']}.html?{urllib.parse.urlencode(q)}"
            w, h = c["size"]
            extra = [f"--virtual-time-budget={budget}", f"--window-size={w},{h}"]
            if dark:
                extra += ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
            if scale != 1:
                extra.append(f"--force-device-scale-factor={scale}")
            run = chromium(extra + ["--dump-dom", url], pathlib.Path(tmp) / c["name"])
            m = re.search(r'data-report="([^"]*)"', run.stdout)
            if not m:
                problems = ["no report (page did not finish)"]
            else:
                report = json.loads(html.unescape(m.group(1)))
                problems = check(c, report)
            if not opts.no_shots:
                shot = out / f"{c['name']}.png"
                chromium(extra + [f"--screenshot={shot}", url], pathlib.Path(tmp) / (c["name"] + "-shot"))
            if problems:
                failed += 1
                print(f"FAIL {c['name']}: {'; '.join(problems)}\n     {url}")
            else:
                passed += 1
                print(f"ok   {c['name']}")
    server.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
