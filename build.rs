// Declaring the app's commands makes each one denied unless a capability grants it to
// a window: the remote `embedded` sign-in page is in no capability and gets nothing.
const COMMANDS: &[&str] = &[
    "ui_strings",
    "app_status",
    "signin_start",
    "signin_wait",
    "signin_cancel",
    "guide_open",
    "workbench_open",
    "window_close",
    "settings_get",
    "server_check",
    "profile_save",
    "profile_use",
    "profile_remove",
    "language_set",
    "autostart_set",
    "provision_get",
    "provision_apply",
    "provision_cancel",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    tauri_build::try_build(attributes).expect("tauri build configuration");
}
