//! Windows, created on demand and destroyed when closed: the app idles with none.
//!
//! Local windows load the app's own pages and get only the commands their capability
//! lists. The `embedded` window loads the NocoBase sign-in page: a remote page, so it
//! gets no IPC at all (no capability names it), and its navigation is intercepted:
//! the WeCom plugin's final `?authenticator=&token=` landing is captured and never
//! loaded (the token stays out of the webview), a `/signin?error=` failure is reported.

use rust_i18n::t;
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::watch;
use url::Url;

use super::state::{self, SigninOutcome};
use crate::core::error::Error;
use crate::core::profile::{Profile, SignInMethod, WorkbenchPath};
use crate::core::session::{Grant, Tokens};
use crate::core::signin::embedded::{classify, Failure, Landing};
use crate::core::signin::finish;

pub const SIGNIN: &str = "signin";
pub const SETTINGS: &str = "settings";
pub const PROVISION: &str = "provision";
pub const GUIDE: &str = "guide";
pub const EMBEDDED: &str = "embedded";

/// `(label, page, title key, width, height)` of every local window.
const LOCAL: [(&str, &str, &str, f64, f64); 4] = [
    (
        SIGNIN,
        "signin.html",
        "ui.signin.window_title",
        440.0,
        640.0,
    ),
    (
        SETTINGS,
        "settings.html",
        "ui.settings.window_title",
        560.0,
        720.0,
    ),
    (
        PROVISION,
        "provision.html",
        "ui.provision.window_title",
        480.0,
        520.0,
    ),
    (GUIDE, "guide.html", "ui.guide.window_title", 520.0, 720.0),
];

/// Shows the window `label`, creating it if needed.
pub fn open<R: Runtime>(app: &AppHandle<R>, label: &str) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(label) {
        w.show()?;
        w.set_focus()?;
        return Ok(());
    }
    let Some((_, page, title, w, h)) = LOCAL.iter().find(|(l, ..)| *l == label) else {
        return Ok(());
    };
    let window = WebviewWindowBuilder::new(app, label, WebviewUrl::App((*page).into()))
        .title(t!(*title))
        .inner_size(*w, *h)
        .min_inner_size(360.0, 420.0)
        .center()
        // Local pages never navigate away from the app.
        .on_navigation(|url| {
            matches!(url.scheme(), "tauri" | "asset") || url.host_str() == Some("tauri.localhost")
        })
        .build()?;
    if label == SIGNIN {
        // Closing the sign-in window abandons the sign-in it was showing.
        let app = app.clone();
        window.on_window_event(move |event| {
            if let tauri::WindowEvent::Destroyed = event {
                state::cancel_signin(&app);
            }
        });
    }
    Ok(())
}

/// Opens NocoBase's own sign-in page in an app window (servers without the provider).
pub fn open_embedded<R: Runtime>(
    app: &AppHandle<R>,
    profile: &Profile,
    done: watch::Sender<Option<SigninOutcome>>,
) -> tauri::Result<()> {
    if let Some(w) = app.get_webview_window(EMBEDDED) {
        w.close()?;
    }
    let redirect: String =
        url::form_urlencoded::byte_serialize(profile.desktop_path.as_str().as_bytes()).collect();
    let start =
        WorkbenchPath::parse(&format!("/signin?redirect={redirect}")).expect("a valid path");
    let url: Url = profile.origin.join(&start);
    let origin = profile.origin.clone();
    let handle = app.clone();
    let profile = profile.clone();
    let done_on_close = done.clone();
    let window = WebviewWindowBuilder::new(app, EMBEDDED, WebviewUrl::External(url))
        .title(t!("ui.signin.window_title"))
        .inner_size(480.0, 700.0)
        .center()
        .on_navigation(move |url| {
            if !matches!(url.scheme(), "http" | "https") {
                return false;
            }
            match classify(&origin, url) {
                Landing::Continue => true,
                Landing::SignedIn { token, .. } => {
                    let (app, profile, done) = (handle.clone(), profile.clone(), done.clone());
                    tauri::async_runtime::spawn(async move {
                        let ctx = app.state::<state::Shell>().ctx.clone();
                        let tokens = Tokens {
                            access: token,
                            refresh: None,
                        };
                        let result = finish(
                            &ctx,
                            &profile,
                            SignInMethod::Embedded,
                            Grant::NocoBaseToken,
                            tokens,
                            None,
                        )
                        .await;
                        close(&app, EMBEDDED);
                        state::finish_signin(&app, &profile, result, &done);
                    });
                    false
                }
                Landing::Failed(failure) => {
                    let (app, profile, done) = (handle.clone(), profile.clone(), done.clone());
                    let error = match failure {
                        Failure::FirstLoginRequired { message } => {
                            Error::FirstLoginRequired { message }
                        }
                        Failure::Other { message } => Error::SignInFailed { message },
                    };
                    let first_login = matches!(error, Error::FirstLoginRequired { .. });
                    tauri::async_runtime::spawn(async move {
                        close(&app, EMBEDDED);
                        state::finish_signin(&app, &profile, Err(error), &done);
                        if first_login {
                            let _ = open(&app, GUIDE);
                        }
                    });
                    false
                }
            }
        })
        .build()?;
    window.on_window_event(move |event| {
        if let tauri::WindowEvent::Destroyed = event {
            // Closed by the user before it finished: that is a cancel.
            done_on_close.send_if_modified(|o| {
                if o.is_none() {
                    *o = Some(SigninOutcome::failed(&Error::FlowCancelled));
                    true
                } else {
                    false
                }
            });
        }
    });
    Ok(())
}

pub fn close<R: Runtime>(app: &AppHandle<R>, label: &str) {
    if let Some(w) = app.get_webview_window(label) {
        let _ = w.close();
    }
}
