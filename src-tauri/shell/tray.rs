//! Draws the tray from [`TrayState`]. On Linux a tray menu, once set, can only be
//! edited, so the items are built once and then relabelled and enabled in place.
//!
//! The tray library loads libayatana-appindicator at run time and panics when it is
//! missing; that panic is caught and reported, and the app stays usable from its
//! windows and links.

use std::sync::Mutex;

use rust_i18n::t;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Runtime};

use super::tray_model::{
    self, enabled, MenuId, TrayIcon as IconKind, TrayState, MENU, PROFILE_PREFIX,
};
use super::{actions, state::Shell};

pub const TRAY_ID: &str = "main";

/// The live menu items, kept to edit them in place.
pub struct TrayHandles<R: Runtime> {
    tray: TrayIcon<R>,
    items: Vec<(MenuId, MenuItem<R>)>,
    profiles: Submenu<R>,
    profile_items: Vec<CheckMenuItem<R>>,
}

pub struct TrayCell<R: Runtime>(pub Mutex<Option<TrayHandles<R>>>);

fn icon(kind: IconKind) -> Image<'static> {
    let bytes: &'static [u8] = match kind {
        IconKind::SignedOut => include_bytes!("../../icons/tray-signed-out.png"),
        IconKind::SigningIn => include_bytes!("../../icons/tray-signing-in.png"),
        IconKind::SignedIn => include_bytes!("../../icons/tray-signed-in.png"),
        IconKind::Attention => include_bytes!("../../icons/tray-attention.png"),
    };
    Image::from_bytes(bytes).expect("bundled PNG icons decode")
}

/// The first line of the menu: who is signed in where, or why not.
pub fn status_line(state: &TrayState) -> String {
    match state {
        TrayState::NoProfile => t!("tray.state.no_profile").into(),
        TrayState::SignedOut { host, reason: None } => {
            t!("tray.state.signed_out", host = host).into()
        }
        TrayState::SignedOut {
            host,
            reason: Some(r),
        } => t!("tray.state.ended", host = host, reason = r).into(),
        TrayState::SigningIn { host } => t!("tray.state.signing_in", host = host).into(),
        TrayState::SignedIn { name, host } => {
            t!("tray.state.signed_in", name = name, host = host).into()
        }
        TrayState::Attention { host, message } => {
            t!("tray.state.attention", host = host, message = message).into()
        }
    }
}

fn label(item: MenuId, state: &TrayState) -> String {
    if item == MenuId::Status {
        return status_line(state);
    }
    let key = MENU
        .iter()
        .find(|(m, _, _)| *m == item)
        .map(|(_, _, k)| *k)
        .unwrap_or("");
    t!(key).into()
}

/// Builds the tray. Returns `false` when the system has no tray support.
pub fn create<R: Runtime>(app: &AppHandle<R>) -> bool {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(app)));
    match built {
        Ok(Ok(handles)) => {
            app.manage(TrayCell(Mutex::new(Some(handles))));
            true
        }
        Ok(Err(e)) => {
            tracing::error!("the tray could not be created: {e}");
            false
        }
        Err(_) => {
            tracing::error!(
                "the tray is not available: install libayatana-appindicator3-1 (or a StatusNotifier host)"
            );
            false
        }
    }
}

fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<TrayHandles<R>> {
    let state = app.state::<Shell>().tray_state();
    let mut items = Vec::new();
    for (item, id, _) in MENU {
        if item == MenuId::Profiles {
            continue;
        }
        let mi = MenuItem::with_id(
            app,
            id,
            label(item, &state),
            enabled(item, &state),
            None::<&str>,
        )?;
        items.push((item, mi));
    }
    let profiles = Submenu::with_id(
        app,
        tray_model::id_of(MenuId::Profiles),
        label(MenuId::Profiles, &state),
        true,
    )?;
    let get = |m: MenuId| &items.iter().find(|(i, _)| *i == m).expect("built above").1;
    let separator = || PredefinedMenuItem::separator(app);
    let menu = Menu::with_items(
        app,
        &[
            get(MenuId::Status),
            &separator()?,
            get(MenuId::SignIn),
            get(MenuId::OpenDesktop),
            get(MenuId::OpenMobile),
            get(MenuId::Guide),
            &separator()?,
            &profiles,
            get(MenuId::Settings),
            get(MenuId::SignOut),
            &separator()?,
            get(MenuId::Quit),
        ],
    )?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(state.icon()))
        .tooltip(t!("app.name"))
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            let state = app.state::<Shell>().tray_state();
            let action = tray_model::action(event.id().as_ref(), &state);
            actions::perform(app, action);
        })
        .build(app)?;
    let mut handles = TrayHandles {
        tray,
        items,
        profiles,
        profile_items: Vec::new(),
    };
    fill_profiles(app, &mut handles)?;
    Ok(handles)
}

fn fill_profiles<R: Runtime>(
    app: &AppHandle<R>,
    handles: &mut TrayHandles<R>,
) -> tauri::Result<()> {
    for old in handles.profile_items.drain(..) {
        handles.profiles.remove(&old)?;
    }
    let Ok(all) = app.state::<Shell>().profiles() else {
        return Ok(());
    };
    let active = all.select(None).ok().map(|p| p.name.clone());
    for p in &all.profiles {
        let text = format!("{} · {}", p.name, p.origin.host());
        let item = CheckMenuItem::with_id(
            app,
            format!("{PROFILE_PREFIX}{}", p.name),
            text,
            true,
            Some(&p.name) == active.as_ref(),
            None::<&str>,
        )?;
        handles.profiles.append(&item)?;
        handles.profile_items.push(item);
    }
    Ok(())
}

/// Redraws icon, labels, enabled items and the profile list.
pub fn update<R: Runtime>(app: &AppHandle<R>, state: &TrayState) {
    let Some(cell) = app.try_state::<TrayCell<R>>() else {
        return;
    };
    let mut guard = cell.0.lock().unwrap_or_else(|e| e.into_inner());
    let Some(handles) = guard.as_mut() else {
        return;
    };
    let _ = handles.tray.set_icon(Some(icon(state.icon())));
    for (item, mi) in &handles.items {
        let _ = mi.set_text(label(*item, state));
        let _ = mi.set_enabled(enabled(*item, state));
    }
    let _ = handles.profiles.set_text(label(MenuId::Profiles, state));
    if let Err(e) = fill_profiles(app, handles) {
        tracing::warn!("could not list the profiles in the tray: {e}");
    }
}
