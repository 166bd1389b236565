//! Deep links, cold (the app was started by the link) and warm (the running app gets
//! it from a second launch, through single-instance). Every link goes through
//! `core::links::route` before anything acts on it.

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use super::state::Shell;
use super::{actions, notify, windows};
use crate::core::links::{self, Route};

pub fn setup<R: Runtime>(app: &AppHandle<R>, register: bool) {
    // Linux has no install step that registers the scheme for a plain binary or an
    // AppImage: do it at every start (cheap, and it follows the binary if it moved).
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if register {
        if let Err(e) = app.deep_link().register_all() {
            tracing::warn!("could not register the link scheme: {e}");
        }
    }
    #[cfg(not(any(target_os = "linux", all(debug_assertions, windows))))]
    let _ = register;
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            handle_link(&handle, url.as_str());
        }
    });
    match app.deep_link().get_current() {
        Ok(Some(urls)) => urls.iter().for_each(|u| handle_link(app, u.as_str())),
        Ok(None) => {}
        Err(e) => tracing::warn!("could not read the start link: {e}"),
    }
}

pub fn handle_link<R: Runtime>(app: &AppHandle<R>, link: &str) {
    let shell = app.state::<Shell>();
    match links::route(link, &shell.ctx.flows) {
        Ok(Route::OAuthCallback(url)) => {
            // The pending browser sign-in validates state, issuer and code.
            let _ = shell.ctx.deep_links.send(url);
        }
        Ok(Route::SignIn { profile }) => {
            if let Some(name) = profile {
                if let Err(e) = actions::switch_profile(app, name.as_str()) {
                    notify::show(app, &e.message());
                    return;
                }
            }
            let _ = windows::open(app, windows::SIGNIN);
        }
        Ok(Route::Open { path, profile }) => {
            if let Some(name) = profile {
                if let Err(e) = actions::switch_profile(app, name.as_str()) {
                    notify::show(app, &e.message());
                    return;
                }
            }
            if let Err(e) = actions::open_workbench(app, false, Some(path.as_str())) {
                notify::show(app, &e.message());
            }
        }
        Ok(Route::Configure(provisioning)) => {
            *shell.provisioning.lock().unwrap_or_else(|e| e.into_inner()) = Some(*provisioning);
            let _ = windows::open(app, windows::PROVISION);
        }
        Err(refusal) => {
            tracing::warn!("refused link {} ({})", links::redacted(link), refusal.0);
        }
    }
}
