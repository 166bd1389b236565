//! Desktop notifications for what the user should know without a window open:
//! signed in, a session ended (and why), an error that needs them.

use rust_i18n::t;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;

pub fn show<R: Runtime>(app: &AppHandle<R>, body: &str) {
    // No notification daemon (a headless session) is not an error worth more than a log.
    if let Err(e) = app
        .notification()
        .builder()
        .title(t!("app.name"))
        .body(body)
        .show()
    {
        tracing::info!("notification not shown: {e}");
    }
}
