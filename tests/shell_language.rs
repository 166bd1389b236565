//! Switching the language in Settings (its own test binary: the language is global
//! to the process, and other tests assert English text).

use std::sync::Arc;

use nocobase_wecom_companion::core::opener::SystemOpener;
use nocobase_wecom_companion::core::paths::Paths;
use nocobase_wecom_companion::core::secrets::MemoryStore;
use nocobase_wecom_companion::core::Context;
use nocobase_wecom_companion::shell::state::Shell;
use nocobase_wecom_companion::shell::{build, context, ShellOptions};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    app: App<MockRuntime>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new(
        Paths::under(dir.path()),
        Arc::new(MemoryStore::default()),
        Arc::new(SystemOpener),
    );
    let shell = Shell::new(Arc::new(ctx));
    // Quiet start (no first-run window); no tray, single-instance or scheme
    // registration on the mock runtime.
    let options = ShellOptions {
        autostart: true,
        ..ShellOptions::default()
    };
    let app = build(mock_builder(), shell, options)
        .build(context())
        .expect("the app builds on the mock runtime");
    Harness { app, _dir: dir }
}

fn window(app: &App<MockRuntime>, label: &str, url: WebviewUrl) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, label, url).build().unwrap()
}

fn invoke(
    w: &WebviewWindow<MockRuntime>,
    url: &str,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    get_ipc_response(
        w,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: url.parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

const LOCAL: &str = "tauri://localhost";

#[test]
fn language_changes_every_string() {
    let h = harness();
    let settings = window(&h.app, "settings", WebviewUrl::default());
    invoke(
        &settings,
        LOCAL,
        "language_set",
        json!({"language": "zh-CN"}),
    )
    .unwrap();
    let strings = invoke(&settings, LOCAL, "ui_strings", json!({})).unwrap();
    assert_eq!(strings["locale"], "zh-CN");
    assert_eq!(strings["strings"]["app.name"], "NocoBase 企业微信助手");
    invoke(
        &settings,
        LOCAL,
        "language_set",
        json!({"language": "en-US"}),
    )
    .unwrap();
    let strings = invoke(&settings, LOCAL, "ui_strings", json!({})).unwrap();
    assert_eq!(strings["strings"]["tray.signin"], "Sign in with WeCom…");
}
