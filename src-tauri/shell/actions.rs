//! What the app does, whoever asked: a tray click, a deep link, a second launch.

use rust_i18n::t;
use tauri::{AppHandle, Manager, Runtime};

use super::state::{self, Shell};
use super::tray_model::Action;
use super::{notify, windows};
use crate::core::error::Error;
use crate::core::workbench::{self, Workbench};

pub fn perform<R: Runtime>(app: &AppHandle<R>, action: Action) {
    let result = match action {
        Action::OpenSignIn => windows::open(app, windows::SIGNIN).map_err(|e| e.to_string()),
        Action::OpenSettings => windows::open(app, windows::SETTINGS).map_err(|e| e.to_string()),
        Action::OpenGuide => windows::open(app, windows::GUIDE).map_err(|e| e.to_string()),
        Action::OpenWorkbench { mobile } => {
            open_workbench(app, mobile, None).map_err(|e| e.message())
        }
        Action::SwitchProfile(name) => switch_profile(app, &name).map_err(|e| e.message()),
        Action::SignOut => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move { sign_out(&app).await });
            Ok(())
        }
        Action::Quit => {
            app.exit(0);
            Ok(())
        }
        Action::Nothing => Ok(()),
    };
    if let Err(message) = result {
        notify::show(app, &message);
    }
}

/// Opens a workbench URL of the active profile in the default browser. Only URLs on
/// the profile's origin are ever built here (see `core::workbench`).
pub fn open_workbench<R: Runtime>(
    app: &AppHandle<R>,
    mobile: bool,
    path: Option<&str>,
) -> Result<(), Error> {
    let shell = app.state::<Shell>();
    let profile = shell.active_profile()?;
    let which = if mobile {
        Workbench::Mobile
    } else {
        Workbench::Desktop
    };
    let url = workbench::url(&profile, which, path)?;
    shell.ctx.opener.open(&url)
}

pub fn switch_profile<R: Runtime>(app: &AppHandle<R>, name: &str) -> Result<(), Error> {
    let shell = app.state::<Shell>();
    let mut all = shell.profiles()?;
    all.use_profile(name)?;
    shell.ctx.save_profiles(&all)?;
    state::cancel_signin(app);
    state::refresh(app);
    state::restart_keeper(app);
    Ok(())
}

/// Revokes on the server (best effort) and forgets the session here.
pub async fn sign_out<R: Runtime>(app: &AppHandle<R>) {
    let shell = app.state::<Shell>();
    let Ok(profile) = shell.active_profile() else {
        return;
    };
    match crate::core::signout::sign_out(&shell.ctx, &profile).await {
        Ok(true) => notify::show(app, &t!("cli.signed_out", host = profile.origin.host())),
        Ok(false) => {}
        Err(e) => notify::show(app, &e.message()),
    }
    state::refresh(app);
    state::restart_keeper(app);
}
