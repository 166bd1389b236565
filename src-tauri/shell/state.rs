//! The running app's state and what it does between windows: the current sign-in, the
//! keeper's single timer, and the tray state derived from the core.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use rust_i18n::t;
use serde::Serialize;
use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::watch;

use super::tray_model::TrayState;
use super::{notify, tray, windows};
use crate::core::error::{Error, Result};
use crate::core::keeper;
use crate::core::links::Provisioning;
use crate::core::oauth::discover;
use crate::core::profile::{Profile, Profiles, SignInMethod};
use crate::core::session::Session;
use crate::core::signin::{self, browser, device};
use crate::core::Context;

/// How a sign-in ended, as the sign-in window shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SigninOutcome {
    pub ok: bool,
    pub name: Option<String>,
    pub host: Option<String>,
    pub message: Option<String>,
    pub code: Option<String>,
    pub expired: bool,
    pub cancelled: bool,
    pub first_login: bool,
}

impl SigninOutcome {
    pub fn signed_in(session: &Session, profile: &Profile) -> SigninOutcome {
        SigninOutcome {
            ok: true,
            name: Some(session.user.display_name()),
            host: Some(profile.origin.host().to_owned()),
            message: None,
            code: None,
            expired: false,
            cancelled: false,
            first_login: false,
        }
    }

    pub fn failed(e: &Error) -> SigninOutcome {
        SigninOutcome {
            ok: false,
            name: None,
            host: None,
            message: Some(e.message()),
            code: Some(e.id().to_owned()),
            expired: matches!(e, Error::FlowExpired),
            cancelled: matches!(e, Error::FlowCancelled),
            first_login: matches!(e, Error::FirstLoginRequired { .. }),
        }
    }
}

/// What the sign-in window needs to show right away.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "camelCase")]
pub enum SigninView {
    #[serde(rename_all = "camelCase")]
    Device {
        qr_data_uri: String,
        user_code: String,
        verification_uri: String,
        verification_uri_complete: String,
        expires_at: i64,
        first_time: bool,
    },
    #[serde(rename_all = "camelCase")]
    Browser {
        authorize_url: String,
    },
    Embedded,
}

/// The sign-in in progress (at most one).
struct SigninTask {
    task: Option<JoinHandle<()>>,
    outcome: watch::Receiver<Option<SigninOutcome>>,
}

pub struct Shell {
    pub ctx: Arc<Context>,
    tray_state: Mutex<TrayState>,
    signin: Mutex<Option<SigninTask>>,
    /// A provisioning link waiting for the user's confirmation.
    pub provisioning: Mutex<Option<Provisioning>>,
    keeper: Mutex<Option<JoinHandle<()>>>,
    /// The in-process sandbox of `--sandbox`, kept alive with the app.
    pub sandbox: Mutex<Option<crate::sandbox::Sandbox>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shell {
    pub fn new(ctx: Arc<Context>) -> Shell {
        Shell {
            ctx,
            tray_state: Mutex::new(TrayState::NoProfile),
            signin: Mutex::new(None),
            provisioning: Mutex::new(None),
            keeper: Mutex::new(None),
            sandbox: Mutex::new(None),
        }
    }

    pub fn tray_state(&self) -> TrayState {
        lock(&self.tray_state).clone()
    }

    pub fn profiles(&self) -> Result<Profiles> {
        let (profiles, problem) = self.ctx.load_profiles()?;
        if let Some(problem) = problem {
            tracing::warn!("{}", problem.message());
        }
        Ok(profiles)
    }

    pub fn active_profile(&self) -> Result<Profile> {
        Ok(self.profiles()?.select(None)?.clone())
    }

    /// The tray state from what the core knows (no network).
    pub fn derive_state(&self) -> TrayState {
        let Ok(profile) = self.active_profile() else {
            return TrayState::NoProfile;
        };
        let host = profile.origin.host().to_owned();
        match self.ctx.sessions.peek(profile.name.as_str()) {
            Ok((Some(session), _)) => TrayState::SignedIn {
                name: session.user.display_name(),
                host,
            },
            Ok((None, ended)) => TrayState::SignedOut {
                host,
                reason: ended.map(|e| e.reason.message()),
            },
            Err(e) => TrayState::Attention {
                host,
                message: e.message(),
            },
        }
    }
}

/// Sets the tray state and redraws the tray.
pub fn set_state<R: Runtime>(app: &AppHandle<R>, state: TrayState) {
    let shell = app.state::<Shell>();
    *lock(&shell.tray_state) = state.clone();
    tray::update(app, &state);
}

/// Re-reads the state from the core and redraws.
pub fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let state = app.state::<Shell>().derive_state();
    set_state(app, state);
}

/// Starts a sign-in for the active profile, replacing any sign-in in progress.
pub async fn start_signin<R: Runtime>(
    app: &AppHandle<R>,
    wanted: Option<SignInMethod>,
) -> Result<SigninView> {
    cancel_signin(app);
    let shell = app.state::<Shell>();
    let ctx = shell.ctx.clone();
    let profile = shell.active_profile()?;
    let metadata = discover(&ctx.http, &profile.origin).await?;
    let method = signin::resolve_method(
        wanted.unwrap_or(profile.method),
        metadata.is_some(),
        metadata.as_ref().is_some_and(|m| m.supports_device_flow()),
        true,
        true,
    )
    .map_err(|e| match e {
        Error::ProviderMissing { .. } => Error::ProviderMissing {
            origin: profile.origin.to_string(),
        },
        other => other,
    })?;
    let (done, outcome) = watch::channel(None);
    let host = profile.origin.host().to_owned();
    set_state(app, TrayState::SigningIn { host });

    let view = match method {
        SignInMethod::Device => {
            let started = device::begin(&ctx, &profile).await?;
            let url = started.verification_uri_complete();
            let svg = device::qr_svg(&url).unwrap_or_default();
            let view = SigninView::Device {
                qr_data_uri: format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                ),
                user_code: started.user_code().to_owned(),
                verification_uri: started.verification_uri().to_owned(),
                verification_uri_complete: url,
                expires_at: started.expires_at,
                first_time: !profile.wecom_authorized,
            };
            let app = app.clone();
            let task = tauri::async_runtime::spawn(async move {
                let result = started.finish(&ctx, &profile).await;
                finish_signin(&app, &profile, result, &done);
            });
            store_task(&shell, Some(task), outcome);
            view
        }
        SignInMethod::Browser => {
            let (url_tx, url_rx) = tokio::sync::oneshot::channel();
            let url_tx = Mutex::new(Some(url_tx));
            let app2 = app.clone();
            let task = tauri::async_runtime::spawn(async move {
                let progress = move |p: browser::Progress| {
                    if let browser::Progress::OpenBrowser { url } = p {
                        if let Some(tx) = lock(&url_tx).take() {
                            let _ = tx.send(url.to_string());
                        }
                    }
                };
                let options = browser::BrowserOptions { deep_link: true };
                let result = browser::sign_in(&ctx, &profile, options, &progress).await;
                finish_signin(&app2, &profile, result, &done);
            });
            store_task(&shell, Some(task), outcome.clone());
            match url_rx.await {
                Ok(authorize_url) => SigninView::Browser { authorize_url },
                // The flow failed before opening the browser: report its error.
                Err(_) => {
                    let mut outcome = outcome;
                    let failed = outcome
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|o| o.clone())
                        .and_then(|o| o.message);
                    return Err(Error::SignInFailed {
                        message: failed.unwrap_or_default(),
                    });
                }
            }
        }
        SignInMethod::Embedded | SignInMethod::Auto => {
            store_task(&shell, None, outcome);
            windows::open_embedded(app, &profile, done).map_err(|e| Error::SignInFailed {
                message: e.to_string(),
            })?;
            SigninView::Embedded
        }
    };
    Ok(view)
}

fn store_task(
    shell: &Shell,
    task: Option<JoinHandle<()>>,
    outcome: watch::Receiver<Option<SigninOutcome>>,
) {
    *lock(&shell.signin) = Some(SigninTask { task, outcome });
}

/// Records the end of a sign-in: tray, notification, keeper, and the waiting window.
pub fn finish_signin<R: Runtime>(
    app: &AppHandle<R>,
    profile: &Profile,
    result: Result<Session>,
    done: &watch::Sender<Option<SigninOutcome>>,
) {
    let outcome = match &result {
        Ok(session) => {
            remember_authorized(app, profile);
            let name = session.user.display_name();
            notify::show(
                app,
                &t!(
                    "notify.signed_in",
                    name = name,
                    host = profile.origin.host()
                ),
            );
            SigninOutcome::signed_in(session, profile)
        }
        Err(e) => {
            if matches!(e, Error::FirstLoginRequired { .. }) {
                notify::show(app, &e.message());
            }
            SigninOutcome::failed(e)
        }
    };
    let _ = done.send(Some(outcome));
    match result {
        Err(Error::FirstLoginRequired { message }) => set_state(
            app,
            TrayState::Attention {
                host: profile.origin.host().to_owned(),
                message,
            },
        ),
        _ => refresh(app),
    }
    restart_keeper(app);
}

fn remember_authorized<R: Runtime>(app: &AppHandle<R>, profile: &Profile) {
    let shell = app.state::<Shell>();
    if let Ok(mut all) = shell.profiles() {
        if let Some(p) = all.get_mut(profile.name.as_str()) {
            if !p.wecom_authorized {
                p.wecom_authorized = true;
                if let Err(e) = shell.ctx.save_profiles(&all) {
                    tracing::warn!("{}", e.message());
                }
            }
        }
    }
}

/// Waits for the current sign-in to end.
pub async fn wait_signin<R: Runtime>(app: &AppHandle<R>) -> SigninOutcome {
    let receiver = lock(&app.state::<Shell>().signin)
        .as_ref()
        .map(|s| s.outcome.clone());
    let Some(mut receiver) = receiver else {
        return SigninOutcome::failed(&Error::FlowCancelled);
    };
    let outcome = receiver
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|o| o.clone());
    outcome.unwrap_or_else(|| SigninOutcome::failed(&Error::FlowCancelled))
}

/// Abandons the sign-in in progress, if any.
pub fn cancel_signin<R: Runtime>(app: &AppHandle<R>) {
    let shell = app.state::<Shell>();
    let previous = lock(&shell.signin).take();
    if let Some(SigninTask { task, .. }) = previous {
        if let Some(task) = task {
            task.abort();
        }
        shell.ctx.flows.clear();
        if let Some(w) = app.get_webview_window(windows::EMBEDDED) {
            let _ = w.close();
        }
        if matches!(shell.tray_state(), TrayState::SigningIn { .. }) {
            refresh(app);
        }
    }
}

/// One timer for the active session: sleeps until the keeper's next action, acts,
/// and goes back to sleep. No polling; nothing runs while there is no session.
pub fn restart_keeper<R: Runtime>(app: &AppHandle<R>) {
    let shell = app.state::<Shell>();
    if let Some(old) = lock(&shell.keeper).take() {
        old.abort();
    }
    let app = app.clone();
    let task = tauri::async_runtime::spawn(async move {
        let mut failures = 0u32;
        loop {
            let shell = app.state::<Shell>();
            let ctx = shell.ctx.clone();
            let Ok(profile) = shell.active_profile() else {
                return;
            };
            let Ok(Some((session, tokens))) = ctx.sessions.load(profile.name.as_str()) else {
                return;
            };
            let Some(at) = keeper::next_action_at(&session, &tokens) else {
                return;
            };
            // Sleep in chunks of at most six hours so a suspended laptop catches up soon
            // after it wakes.
            let wait = (at - ctx.now()).clamp(0, 6 * 3600) as u64;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            if ctx.now() < at {
                continue;
            }
            match keeper::keep_alive(&ctx, &profile, false).await {
                Ok(_) => {
                    failures = 0;
                    refresh(&app);
                }
                Err(Error::SessionEnded { reason }) => {
                    notify::show(&app, &reason.message());
                    set_state(
                        &app,
                        TrayState::SignedOut {
                            host: profile.origin.host().to_owned(),
                            reason: Some(reason.message()),
                        },
                    );
                    return;
                }
                Err(e) => {
                    // The server is unreachable or slow: try again later, backing off.
                    failures += 1;
                    tracing::warn!("keeping the session alive failed: {}", e.message());
                    let backoff = 30u64.saturating_mul(1 << failures.min(6));
                    tokio::time::sleep(Duration::from_secs(backoff)).await;
                }
            }
        }
    });
    *lock(&shell.keeper) = Some(task);
}

/// At start: show what the core knows, then check the session with the server once.
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    refresh(app);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let shell = app.state::<Shell>();
        if let Ok(profile) = shell.active_profile() {
            if matches!(
                shell.ctx.sessions.peek(profile.name.as_str()),
                Ok((Some(_), _))
            ) {
                match keeper::verify(&shell.ctx, &profile).await {
                    Err(Error::SessionEnded { reason }) => {
                        notify::show(&app, &reason.message());
                    }
                    Err(e) => tracing::warn!("could not check the session: {}", e.message()),
                    Ok(_) => {}
                }
                refresh(&app);
            }
        }
        restart_keeper(&app);
    });
}
