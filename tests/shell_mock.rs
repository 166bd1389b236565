//! The shell on Tauri's MockRuntime: the same `build()` as the real app, commands
//! through real IPC dispatch, and each window's capability enforced (the remote
//! sign-in page may call nothing).

mod support;

use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use support::mock_shell::{harness, invoke, window, LOCAL};
use tauri::WebviewUrl;

#[test]
fn a_window_may_call_only_what_its_capability_grants() {
    let h = harness();
    let signin = window(&h.app, "signin", WebviewUrl::default());
    let strings = invoke(&signin, LOCAL, "ui_strings", json!({})).unwrap();
    assert_eq!(strings["strings"]["app.name"], "NocoBase WeCom Companion");
    // Settings commands are not the sign-in window's business.
    let denied = invoke(&signin, LOCAL, "settings_get", json!({})).unwrap_err();
    assert!(denied.to_string().contains("not allowed"), "{denied}");
    let denied = invoke(&signin, LOCAL, "profile_remove", json!({"name": "x"})).unwrap_err();
    assert!(denied.to_string().contains("not allowed"), "{denied}");

    let settings = window(&h.app, "settings", WebviewUrl::default());
    invoke(&settings, LOCAL, "settings_get", json!({})).unwrap();
    assert!(invoke(&settings, LOCAL, "signin_start", json!({})).is_err());
}

#[test]
fn the_remote_sign_in_page_gets_no_ipc_at_all() {
    let h = harness();
    let remote = "http://127.0.0.1:9/signin?redirect=%2Fadmin";
    let embedded = window(
        &h.app,
        "embedded",
        WebviewUrl::External(remote.parse().unwrap()),
    );
    for cmd in [
        "ui_strings",
        "app_status",
        "signin_start",
        "settings_get",
        "profile_save",
        "workbench_open",
    ] {
        let denied = invoke(&embedded, remote, cmd, json!({})).unwrap_err();
        assert!(
            denied.to_string().contains("not allowed"),
            "{cmd}: {denied}"
        );
    }
    // Even a window with a local label cannot be driven from a remote origin.
    let signin = window(&h.app, "signin", WebviewUrl::default());
    assert!(invoke(&signin, "https://evil.example/", "ui_strings", json!({})).is_err());
}

#[test]
fn settings_validate_and_save_profiles() {
    let h = harness();
    let settings = window(&h.app, "settings", WebviewUrl::default());
    let status = invoke(&settings, LOCAL, "app_status", json!({})).unwrap();
    assert_eq!(status["state"], "noProfile");

    let bad = invoke(
        &settings,
        LOCAL,
        "profile_save",
        json!({"profile": {"name": "work", "origin": "http://nocobase.example.com", "authenticator": "wecom"}}),
    )
    .unwrap_err();
    assert!(bad.as_str().unwrap().contains("must use https"), "{bad}");

    let saved = invoke(
        &settings,
        LOCAL,
        "profile_save",
        json!({"profile": {"name": "work", "origin": "https://nocobase.example.com/admin", "authenticator": "wecom", "desktopPath": "/admin/home"}}),
    )
    .unwrap();
    assert_eq!(saved["active"], "work");
    assert_eq!(
        saved["profiles"][0]["origin"],
        "https://nocobase.example.com"
    );
    assert_eq!(
        saved["profiles"][0]["homeLink"],
        "https://nocobase.example.com/m"
    );
    let status = invoke(&settings, LOCAL, "app_status", json!({})).unwrap();
    assert_eq!(status["state"], "signedOut");
    assert!(status["line"]
        .as_str()
        .unwrap()
        .contains("nocobase.example.com"));

    let hostile = invoke(
        &settings,
        LOCAL,
        "profile_save",
        json!({"profile": {"name": "work", "origin": "https://nocobase.example.com", "authenticator": "wecom", "homeLink": "https://evil.example/m"}, "previousName": "work"}),
    )
    .unwrap_err();
    assert!(
        hostile
            .as_str()
            .unwrap()
            .contains("not a path on this server"),
        "{hostile}"
    );
}

#[test]
fn a_provisioning_window_without_a_link_has_nothing_to_apply() {
    let h = harness();
    let provision = window(&h.app, "provision", WebviewUrl::default());
    assert!(invoke(&provision, LOCAL, "provision_get", json!({})).is_err());
    assert!(invoke(&provision, LOCAL, "provision_apply", json!({})).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_check_reports_what_the_server_offers() {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let origin = sandbox.origin();
    let result = tokio::task::spawn_blocking(move || {
        let h = harness();
        let settings = window(&h.app, "settings", WebviewUrl::default());
        invoke(&settings, LOCAL, "server_check", json!({"origin": origin}))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(result["version"], "2.2.15");
    assert_eq!(result["provider"], true);
    assert_eq!(result["deviceFlow"], true);
    let wecom: Vec<_> = result["authenticators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isWecom"] == true)
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wecom, ["wecom"]);
}
