//! What the tray shows and what its menu items do, as plain data: the menu-id table and
//! a pure `action()` that tests cover without GTK. `tray.rs` draws it.

/// The tray's state, shown by its icon and status line.
#[derive(Debug, Clone, PartialEq)]
pub enum TrayState {
    NoProfile,
    SignedOut {
        host: String,
        reason: Option<String>,
    },
    SigningIn {
        host: String,
    },
    SignedIn {
        name: String,
        host: String,
    },
    /// Something needs the user (a session ended, a first-time authorization is missing).
    Attention {
        host: String,
        message: String,
    },
}

impl TrayState {
    pub fn icon(&self) -> TrayIcon {
        match self {
            TrayState::NoProfile | TrayState::SignedOut { .. } => TrayIcon::SignedOut,
            TrayState::SigningIn { .. } => TrayIcon::SigningIn,
            TrayState::SignedIn { .. } => TrayIcon::SignedIn,
            TrayState::Attention { .. } => TrayIcon::Attention,
        }
    }

    pub fn signed_in(&self) -> bool {
        matches!(self, TrayState::SignedIn { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIcon {
    SignedOut,
    SigningIn,
    SignedIn,
    Attention,
}

/// Menu items. Their ids and label keys live in [`MENU`], and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuId {
    Status,
    SignIn,
    OpenDesktop,
    OpenMobile,
    Guide,
    Profiles,
    Settings,
    SignOut,
    Quit,
}

/// `(item, id, label key)`, in menu order.
pub const MENU: [(MenuId, &str, &str); 9] = [
    (MenuId::Status, "status", "tray.status"),
    (MenuId::SignIn, "signin", "tray.signin"),
    (MenuId::OpenDesktop, "open-desktop", "tray.open_desktop"),
    (MenuId::OpenMobile, "open-mobile", "tray.open_mobile"),
    (MenuId::Guide, "guide", "tray.guide"),
    (MenuId::Profiles, "profiles", "tray.profiles"),
    (MenuId::Settings, "settings", "tray.settings"),
    (MenuId::SignOut, "signout", "tray.signout"),
    (MenuId::Quit, "quit", "tray.quit"),
];

/// The prefix of the "Switch profile ▸" entries' ids: `profile:<name>`.
pub const PROFILE_PREFIX: &str = "profile:";

pub fn id_of(item: MenuId) -> &'static str {
    MENU.iter()
        .find(|(m, _, _)| *m == item)
        .map(|(_, id, _)| *id)
        .expect("every item is in MENU")
}

/// What the app does for a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    OpenSignIn,
    OpenWorkbench { mobile: bool },
    OpenGuide,
    OpenSettings,
    SignOut,
    SwitchProfile(String),
    Quit,
    Nothing,
}

pub fn action(id: &str, state: &TrayState) -> Action {
    if let Some(name) = id.strip_prefix(PROFILE_PREFIX) {
        return Action::SwitchProfile(name.to_owned());
    }
    let Some((item, _, _)) = MENU.iter().find(|(_, i, _)| *i == id) else {
        // The menu listener also sees other menus' events: ignore what is not ours.
        return Action::Nothing;
    };
    let no_profile = matches!(state, TrayState::NoProfile);
    match item {
        MenuId::Status | MenuId::Profiles => Action::Nothing,
        MenuId::SignIn | MenuId::OpenDesktop | MenuId::OpenMobile | MenuId::Guide if no_profile => {
            // Nothing to sign in to yet: set up a server first.
            Action::OpenSettings
        }
        MenuId::SignIn => Action::OpenSignIn,
        MenuId::OpenDesktop => Action::OpenWorkbench { mobile: false },
        MenuId::OpenMobile => Action::OpenWorkbench { mobile: true },
        MenuId::Guide => Action::OpenGuide,
        MenuId::Settings => Action::OpenSettings,
        MenuId::SignOut if state.signed_in() => Action::SignOut,
        MenuId::SignOut => Action::Nothing,
        MenuId::Quit => Action::Quit,
    }
}

/// Which items are clickable in `state`.
pub fn enabled(item: MenuId, state: &TrayState) -> bool {
    match item {
        MenuId::Status => false,
        MenuId::SignOut => state.signed_in(),
        MenuId::SignIn => !matches!(state, TrayState::SigningIn { .. }),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_in() -> TrayState {
        TrayState::SignedIn {
            name: "张三".into(),
            host: "h".into(),
        }
    }

    fn signed_out() -> TrayState {
        TrayState::SignedOut {
            host: "h".into(),
            reason: None,
        }
    }

    #[test]
    fn ids_are_unique_and_complete() {
        let mut ids: Vec<_> = MENU.iter().map(|(_, id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), MENU.len());
        assert_eq!(id_of(MenuId::Quit), "quit");
    }

    #[test]
    fn clicks_map_to_actions() {
        assert_eq!(action("signin", &signed_out()), Action::OpenSignIn);
        assert_eq!(
            action("open-mobile", &signed_in()),
            Action::OpenWorkbench { mobile: true }
        );
        assert_eq!(
            action("open-desktop", &signed_in()),
            Action::OpenWorkbench { mobile: false }
        );
        assert_eq!(action("signout", &signed_in()), Action::SignOut);
        assert_eq!(action("signout", &signed_out()), Action::Nothing);
        assert_eq!(
            action("profile:work", &signed_out()),
            Action::SwitchProfile("work".into())
        );
        assert_eq!(action("status", &signed_in()), Action::Nothing);
        assert_eq!(action("some-other-menu", &signed_in()), Action::Nothing);
        assert_eq!(action("quit", &signed_in()), Action::Quit);
        assert_eq!(action("guide", &signed_out()), Action::OpenGuide);
    }

    #[test]
    fn without_a_profile_everything_leads_to_settings() {
        for id in ["signin", "open-desktop", "open-mobile", "guide", "settings"] {
            assert_eq!(
                action(id, &TrayState::NoProfile),
                Action::OpenSettings,
                "{id}"
            );
        }
    }

    #[test]
    fn icons_and_enabled_items_follow_the_state() {
        assert_eq!(signed_in().icon(), TrayIcon::SignedIn);
        assert_eq!(
            TrayState::SigningIn { host: "h".into() }.icon(),
            TrayIcon::SigningIn
        );
        assert_eq!(
            TrayState::Attention {
                host: "h".into(),
                message: "m".into()
            }
            .icon(),
            TrayIcon::Attention
        );
        assert!(!enabled(MenuId::SignOut, &signed_out()));
        assert!(enabled(MenuId::SignOut, &signed_in()));
        assert!(!enabled(
            MenuId::SignIn,
            &TrayState::SigningIn { host: "h".into() }
        ));
        assert!(!enabled(MenuId::Status, &signed_in()));
    }
}
