#!/usr/bin/env python3
"""Serves ui/ for a plain browser, with tests/ui/mock-tauri.js standing in for Tauri.

Every ui/*.html page gets `<script src="/tests/ui/mock-tauri.js"></script>` inserted
before its common.js, and the app's CSP as a header (connect-src 'self' so the mock can
read the locale files), so a CSP violation shows up here as it would in the app.

Run: python3 tests/ui/serve.py [PORT]   (127.0.0.1 only)
"""
import http.server
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
TESTS = ROOT / "tests" / "ui"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'")
MOCK = '<script src="/tests/ui/mock-tauri.js"></script>\n  '
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".json": "application/json; charset=utf-8",
         ".png": "image/png", ".svg": "image/svg+xml"}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/tests/ui/"):
            file = (TESTS / path[len("/tests/ui/"):]).resolve()
            base = TESTS
        else:
            file = (UI / path.lstrip("/")).resolve()
            base = UI
        if base not in file.parents or not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        if file.suffix == ".html" and base == UI:
            text = body.decode("utf-8")
            marker = '<script src="common.js"'
            if marker not in text:
                self.send_error(500, "page without common.js")
                return
            body = text.replace(marker, MOCK + marker, 1).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving ui/ with the mock on http://127.0.0.1:{server.server_port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
