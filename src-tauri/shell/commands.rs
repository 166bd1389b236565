//! The windows' API. Each command is a few lines over the core or `state`; errors come
//! back as one localised sentence. No command ever returns a token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, Runtime, WebviewWindow};
use tauri_plugin_autostart::ManagerExt;

use super::state::{self, Shell, SigninOutcome, SigninView};
use super::{actions, windows};
use crate::core::error::Error;
use crate::core::nocobase::{choose_wecom, Authenticator};
use crate::core::oauth::discover;
use crate::core::profile::{Origin, Profile, ProfileName, SignInMethod, WorkbenchPath};

type Answer<T> = Result<T, String>;

fn say(e: Error) -> String {
    e.message()
}

/// Every UI string in the current language (English where a translation is missing).
#[derive(Serialize)]
pub struct UiStrings {
    locale: String,
    strings: BTreeMap<String, String>,
}

pub fn ui_strings_for(locale: &str) -> UiStrings {
    let mut strings = BTreeMap::new();
    for file in [
        include_str!("../../ui/locales/app.json"),
        include_str!("../../ui/locales/ui.json"),
    ] {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(file) else {
            continue;
        };
        for (key, texts) in map {
            let text = texts
                .get(locale)
                .or_else(|| texts.get("en-US"))
                .and_then(|t| t.as_str());
            if let Some(text) = text {
                strings.insert(key, text.to_owned());
            }
        }
    }
    UiStrings {
        locale: locale.to_owned(),
        strings,
    }
}

#[tauri::command]
pub fn ui_strings() -> UiStrings {
    ui_strings_for(&rust_i18n::locale())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    profile: Option<ProfileView>,
    state: &'static str,
    line: String,
}

#[tauri::command]
pub fn app_status<R: Runtime>(app: AppHandle<R>) -> AppStatus {
    use super::tray_model::TrayState::*;
    let shell = app.state::<Shell>();
    let tray = shell.tray_state();
    AppStatus {
        profile: shell.active_profile().ok().map(ProfileView::from),
        state: match tray {
            NoProfile => "noProfile",
            SignedOut { .. } => "signedOut",
            SigningIn { .. } => "signingIn",
            SignedIn { .. } => "signedIn",
            Attention { .. } => "attention",
        },
        line: super::tray::status_line(&tray),
    }
}

#[tauri::command]
pub async fn signin_start<R: Runtime>(
    app: AppHandle<R>,
    method: Option<String>,
) -> Answer<SigninView> {
    let method = method
        .map(|m| m.parse::<SignInMethod>())
        .transpose()
        .map_err(say)?;
    state::start_signin(&app, method).await.map_err(|e| {
        state::refresh(&app);
        say(e)
    })
}

#[tauri::command]
pub async fn signin_wait<R: Runtime>(app: AppHandle<R>) -> SigninOutcome {
    state::wait_signin(&app).await
}

#[tauri::command]
pub fn signin_cancel<R: Runtime>(app: AppHandle<R>) {
    state::cancel_signin(&app);
}

#[tauri::command]
pub fn guide_open<R: Runtime>(app: AppHandle<R>) -> Answer<()> {
    windows::open(&app, windows::GUIDE).map_err(|e| e.to_string())
}

#[tauri::command]
pub fn workbench_open<R: Runtime>(app: AppHandle<R>, mobile: bool) -> Answer<()> {
    actions::open_workbench(&app, mobile, None).map_err(say)
}

#[tauri::command]
pub fn window_close<R: Runtime>(window: WebviewWindow<R>) {
    let _ = window.close();
}

/// A profile as the UI shows and edits it.
#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    name: String,
    origin: String,
    authenticator: String,
    desktop_path: String,
    mobile_path: String,
    home_link: String,
    method: SignInMethod,
    #[serde(default)]
    wecom_authorized: bool,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        ProfileView {
            home_link: p.home_link().to_string(),
            name: p.name.to_string(),
            origin: p.origin.to_string(),
            authenticator: p.authenticator,
            desktop_path: p.desktop_path.to_string(),
            mobile_path: p.mobile_path.to_string(),
            method: p.method,
            wecom_authorized: p.wecom_authorized,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    profiles: Vec<ProfileView>,
    active: Option<String>,
    language: String,
    autostart: bool,
}

#[tauri::command]
pub fn settings_get<R: Runtime>(app: AppHandle<R>) -> Answer<Settings> {
    let shell = app.state::<Shell>();
    let all = shell.profiles().map_err(say)?;
    Ok(Settings {
        active: all.select(None).ok().map(|p| p.name.to_string()),
        language: all.language.clone().unwrap_or_else(|| "auto".into()),
        profiles: all.profiles.into_iter().map(ProfileView::from).collect(),
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCheck {
    origin: String,
    version: Option<String>,
    authenticators: Vec<AuthenticatorView>,
    provider: bool,
    device_flow: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorView {
    name: String,
    title: Option<String>,
    is_wecom: bool,
}

impl From<&Authenticator> for AuthenticatorView {
    fn from(a: &Authenticator) -> Self {
        AuthenticatorView {
            name: a.name.clone(),
            title: a.title.clone(),
            is_wecom: a.is_wecom(),
        }
    }
}

#[tauri::command]
pub async fn server_check<R: Runtime>(app: AppHandle<R>, origin: String) -> Answer<ServerCheck> {
    let ctx = app.state::<Shell>().ctx.clone();
    let origin = Origin::parse(&origin).map_err(say)?;
    let nocobase = ctx.nocobase(&origin);
    let info = nocobase.app_info().await.map_err(say)?;
    let list = nocobase.public_authenticators().await.map_err(say)?;
    let metadata = discover(&ctx.http, &origin).await.ok().flatten();
    Ok(ServerCheck {
        origin: origin.to_string(),
        version: info.version,
        authenticators: list.iter().map(AuthenticatorView::from).collect(),
        provider: metadata.is_some(),
        device_flow: metadata.is_some_and(|m| m.supports_device_flow()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileInput {
    name: String,
    origin: String,
    authenticator: String,
    #[serde(default)]
    desktop_path: Option<String>,
    #[serde(default)]
    mobile_path: Option<String>,
    #[serde(default)]
    home_link: Option<String>,
    #[serde(default)]
    method: Option<SignInMethod>,
}

fn parse_profile(input: ProfileInput, previous: Option<&Profile>) -> Result<Profile, Error> {
    let mut p = Profile::new(
        ProfileName::parse(&input.name)?,
        Origin::parse(&input.origin)?,
        input.authenticator.trim(),
    );
    let non_empty = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(d) = non_empty(&input.desktop_path) {
        p.desktop_path = WorkbenchPath::parse(&d)?;
    }
    if let Some(m) = non_empty(&input.mobile_path) {
        p.mobile_path = WorkbenchPath::parse(&m)?;
    }
    if let Some(h) = non_empty(&input.home_link) {
        // The default link is shown filled in; only keep an explicit, different one.
        if h != p.home_link().as_str() {
            p.set_home_link(&h)?;
        }
    }
    p.method = input.method.unwrap_or_default();
    // Same server: the first-time authorization stays done.
    p.wecom_authorized = previous.is_some_and(|old| old.origin == p.origin && old.wecom_authorized);
    Ok(p)
}

#[tauri::command]
pub fn profile_save<R: Runtime>(
    app: AppHandle<R>,
    profile: ProfileInput,
    previous_name: Option<String>,
) -> Answer<Settings> {
    let shell = app.state::<Shell>();
    let mut all = shell.profiles().map_err(say)?;
    let previous = previous_name.as_deref().and_then(|n| all.get(n)).cloned();
    let profile = parse_profile(profile, previous.as_ref()).map_err(say)?;
    if let Some(old) = &previous {
        // Another name or another server: the old session no longer belongs here.
        if old.name != profile.name || old.origin != profile.origin {
            shell.ctx.sessions.forget(old.name.as_str()).map_err(say)?;
        }
        if old.name != profile.name {
            if all.get(profile.name.as_str()).is_some() {
                return Err(say(Error::ProfileExists {
                    name: profile.name.to_string(),
                }));
            }
            let was_active = all.active.as_ref() == Some(&old.name);
            all.remove(old.name.as_str()).map_err(say)?;
            if was_active {
                all.active = Some(profile.name.clone());
            }
        }
    } else if all.get(profile.name.as_str()).is_some() {
        return Err(say(Error::ProfileExists {
            name: profile.name.to_string(),
        }));
    }
    all.upsert(profile);
    shell.ctx.save_profiles(&all).map_err(say)?;
    state::refresh(&app);
    settings_get(app)
}

#[tauri::command]
pub fn profile_use<R: Runtime>(app: AppHandle<R>, name: String) -> Answer<()> {
    actions::switch_profile(&app, &name).map_err(say)
}

#[tauri::command]
pub fn profile_remove<R: Runtime>(app: AppHandle<R>, name: String) -> Answer<()> {
    let shell = app.state::<Shell>();
    let mut all = shell.profiles().map_err(say)?;
    all.remove(&name).map_err(say)?;
    shell.ctx.save_profiles(&all).map_err(say)?;
    shell.ctx.sessions.forget(&name).map_err(say)?;
    state::refresh(&app);
    state::restart_keeper(&app);
    Ok(())
}

#[tauri::command]
pub fn language_set<R: Runtime>(app: AppHandle<R>, language: String) -> Answer<()> {
    let shell = app.state::<Shell>();
    let mut all = shell.profiles().map_err(say)?;
    let choice = match language.as_str() {
        "auto" | "" => None,
        other => Some(crate::i18n::supported(other).to_owned()),
    };
    crate::i18n::apply(crate::i18n::choose(choice.as_deref()));
    all.language = choice;
    shell.ctx.save_profiles(&all).map_err(say)?;
    state::refresh(&app);
    Ok(())
}

#[tauri::command]
pub fn autostart_set<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Answer<()> {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| e.to_string())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionView {
    name: String,
    origin: String,
    authenticator: Option<String>,
    desktop_path: Option<String>,
    mobile_path: Option<String>,
    home_link: Option<String>,
    existing: bool,
}

#[tauri::command]
pub fn provision_get<R: Runtime>(app: AppHandle<R>) -> Answer<ProvisionView> {
    let shell = app.state::<Shell>();
    let pending = shell
        .provisioning
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let p = pending.ok_or_else(|| say(Error::FlowCancelled))?;
    let existing = shell
        .profiles()
        .map(|all| all.get(p.name.as_str()).is_some())
        .unwrap_or(false);
    Ok(ProvisionView {
        name: p.name.to_string(),
        origin: p.origin.to_string(),
        authenticator: p.authenticator,
        desktop_path: p.desktop_path.map(|d| d.to_string()),
        mobile_path: p.mobile_path.map(|m| m.to_string()),
        home_link: p.home_link.map(|h| h.to_string()),
        existing,
    })
}

#[tauri::command]
pub async fn provision_apply<R: Runtime>(app: AppHandle<R>) -> Answer<()> {
    let shell = app.state::<Shell>();
    let pending = shell
        .provisioning
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let p = pending.ok_or_else(|| say(Error::FlowCancelled))?;
    let authenticator = match &p.authenticator {
        Some(a) => a.clone(),
        None => {
            let nocobase = shell.ctx.nocobase(&p.origin);
            let list = nocobase.public_authenticators().await.map_err(say)?;
            choose_wecom(&p.origin, &list, None).map_err(say)?
        }
    };
    let mut profile = Profile::new(p.name.clone(), p.origin.clone(), authenticator);
    if let Some(d) = p.desktop_path {
        profile.desktop_path = d;
    }
    if let Some(m) = p.mobile_path {
        profile.mobile_path = m;
    }
    profile.home_link = p.home_link;
    let mut all = shell.profiles().map_err(say)?;
    if let Some(old) = all.get(profile.name.as_str()) {
        if old.origin != profile.origin {
            shell.ctx.sessions.forget(old.name.as_str()).map_err(say)?;
        } else {
            profile.wecom_authorized = old.wecom_authorized;
        }
    }
    all.upsert(profile);
    all.use_profile(p.name.as_str()).map_err(say)?;
    shell.ctx.save_profiles(&all).map_err(say)?;
    *shell.provisioning.lock().unwrap_or_else(|e| e.into_inner()) = None;
    state::refresh(&app);
    state::restart_keeper(&app);
    windows::close(&app, windows::PROVISION);
    windows::open(&app, windows::SIGNIN).map_err(|e| e.to_string())
}

#[tauri::command]
pub fn provision_cancel<R: Runtime>(app: AppHandle<R>) {
    *app.state::<Shell>()
        .provisioning
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    windows::close(&app, windows::PROVISION);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_strings_fall_back_to_english() {
        let zh = ui_strings_for("zh-CN");
        assert_eq!(zh.strings["app.name"], "NocoBase 企业微信助手");
        let xx = ui_strings_for("xx-XX");
        assert_eq!(xx.strings["app.name"], "NocoBase WeCom Companion");
    }

    #[test]
    fn profile_input_is_validated() {
        let input = |origin: &str, desktop: &str| ProfileInput {
            name: "work".into(),
            origin: origin.into(),
            authenticator: "wecom".into(),
            desktop_path: Some(desktop.into()),
            mobile_path: None,
            home_link: Some(String::new()),
            method: None,
        };
        let p = parse_profile(input("https://h", "/admin/x"), None).unwrap();
        assert_eq!(p.desktop_path.as_str(), "/admin/x");
        assert!(p.home_link.is_none());
        assert!(parse_profile(input("http://h", "/admin"), None).is_err());
        assert!(parse_profile(input("https://h", "//evil"), None).is_err());
    }
}
