//! The shell's `build()` on Tauri's MockRuntime, for `tests/shell_*.rs`: the real
//! `tauri.conf.json` and capabilities, throw-away files, and commands sent through real
//! IPC dispatch from a window of a given label and URL.

use std::sync::Arc;

use nocobase_wecom_companion::core::opener::SystemOpener;
use nocobase_wecom_companion::core::paths::Paths;
use nocobase_wecom_companion::core::secrets::MemoryStore;
use nocobase_wecom_companion::core::Context;
use nocobase_wecom_companion::shell::state::Shell;
use nocobase_wecom_companion::shell::{build, context, ShellOptions};
use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

pub struct Harness {
    pub app: App<MockRuntime>,
    _dir: tempfile::TempDir,
}

pub fn harness() -> Harness {
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

pub fn window(app: &App<MockRuntime>, label: &str, url: WebviewUrl) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, label, url).build().unwrap()
}

pub fn invoke(
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

pub const LOCAL: &str = "tauri://localhost";
