//! Switching the language in Settings (its own test binary: the language is global
//! to the process, and other tests assert English text).

mod support;

use serde_json::json;
use support::mock_shell::{harness, invoke, window, LOCAL};
use tauri::WebviewUrl;

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
