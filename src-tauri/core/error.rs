//! The core's one error type. Each variant has a stable message id (`error.*` in
//! `ui/locales/app.json`) so the CLI and the UI show the same sentence in the user's
//! language; nothing here matches on a server's localised text.

use std::fmt;
use std::path::PathBuf;

use rust_i18n::t;

use super::nocobase::AuthCode;
use super::session::EndReason;

#[derive(Debug)]
pub enum Error {
    // Settings and profiles.
    InvalidOrigin {
        input: String,
        problem: &'static str,
    },
    InvalidPath {
        input: String,
    },
    InvalidProfileName {
        input: String,
    },
    InvalidMethod {
        input: String,
    },
    UnknownProfile {
        name: String,
    },
    ProfileExists {
        name: String,
    },
    NoProfile,
    SettingsCorrupt {
        path: PathBuf,
        moved_to: PathBuf,
    },
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    // Talking to the server.
    Unreachable {
        origin: String,
    },
    Timeout {
        origin: String,
    },
    Tls {
        origin: String,
        detail: String,
    },
    NotJson {
        url: String,
        status: u16,
    },
    NotFound {
        url: String,
    },
    Http {
        status: u16,
        message: String,
    },
    Auth {
        code: AuthCode,
        message: String,
    },
    NoWeComAuthenticator {
        origin: String,
    },
    AuthenticatorNotFound {
        name: String,
        available: Vec<String>,
    },
    SeveralWeComAuthenticators {
        names: Vec<String>,
    },

    // Signing in.
    ProviderMissing {
        origin: String,
    },
    BadProviderMetadata {
        detail: String,
    },
    Registration {
        detail: String,
    },
    OAuth {
        error: String,
        description: String,
    },
    CallbackRejected {
        reason: &'static str,
    },
    FlowExpired,
    FlowCancelled,
    MethodNeedsWindow,
    FirstLoginRequired {
        message: String,
    },
    SignInFailed {
        message: String,
    },
    BrowserOpen {
        detail: String,
    },

    // Sessions and secrets.
    NotSignedIn {
        profile: String,
    },
    SessionEnded {
        reason: EndReason,
    },
    Keyring {
        detail: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable id of the message, for the UI and tests.
    pub fn id(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidOrigin { .. } => "error.invalid_origin",
            InvalidPath { .. } => "error.invalid_path",
            InvalidProfileName { .. } => "error.invalid_profile_name",
            InvalidMethod { .. } => "error.invalid_method",
            UnknownProfile { .. } => "error.unknown_profile",
            ProfileExists { .. } => "error.profile_exists",
            NoProfile => "error.no_profile",
            SettingsCorrupt { .. } => "error.settings_corrupt",
            Io { .. } => "error.io",
            Unreachable { .. } => "error.unreachable",
            Timeout { .. } => "error.timeout",
            Tls { .. } => "error.tls",
            NotJson { .. } => "error.not_json",
            NotFound { .. } => "error.not_found",
            Http { .. } => "error.http",
            Auth { .. } => "error.auth",
            NoWeComAuthenticator { .. } => "error.no_wecom_authenticator",
            AuthenticatorNotFound { .. } => "error.authenticator_not_found",
            SeveralWeComAuthenticators { .. } => "error.several_wecom_authenticators",
            ProviderMissing { .. } => "error.provider_missing",
            BadProviderMetadata { .. } => "error.bad_provider_metadata",
            Registration { .. } => "error.registration",
            OAuth { .. } => "error.oauth",
            CallbackRejected { .. } => "error.callback_rejected",
            FlowExpired => "error.flow_expired",
            FlowCancelled => "error.flow_cancelled",
            MethodNeedsWindow => "error.method_needs_window",
            FirstLoginRequired { .. } => "error.first_login_required",
            SignInFailed { .. } => "error.signin_failed",
            BrowserOpen { .. } => "error.browser_open",
            NotSignedIn { .. } => "error.not_signed_in",
            SessionEnded { .. } => "error.session_ended",
            Keyring { .. } => "error.keyring",
        }
    }

    /// One line the user can act on, in the current language.
    pub fn message(&self) -> String {
        use Error::*;
        let id = self.id();
        match self {
            InvalidOrigin { input, problem } => {
                t!(id, input = input, problem = t!(*problem)).into()
            }
            InvalidPath { input } | InvalidProfileName { input } | InvalidMethod { input } => {
                t!(id, input = input).into()
            }
            UnknownProfile { name } | ProfileExists { name } => t!(id, name = name).into(),
            SettingsCorrupt { path, moved_to } => {
                t!(id, path = path.display(), moved_to = moved_to.display()).into()
            }
            Io { path, source } => t!(id, path = path.display(), detail = source).into(),
            Unreachable { origin }
            | Timeout { origin }
            | NoWeComAuthenticator { origin }
            | ProviderMissing { origin } => t!(id, origin = origin).into(),
            Tls { origin, detail } => t!(id, origin = origin, detail = detail).into(),
            NotJson { url, status } => t!(id, url = url, status = status).into(),
            NotFound { url } => t!(id, url = url).into(),
            Http { status, message } => t!(id, status = status, message = message).into(),
            Auth { code, message } => match code.end_reason() {
                Some(reason) => reason.message(),
                None => t!(id, code = code.as_str(), message = message).into(),
            },
            AuthenticatorNotFound { name, available } => {
                t!(id, name = name, available = available.join(", ")).into()
            }
            SeveralWeComAuthenticators { names } => t!(id, names = names.join(", ")).into(),
            BadProviderMetadata { detail } | Registration { detail } | Keyring { detail } => {
                t!(id, detail = detail).into()
            }
            BrowserOpen { detail } => t!(id, detail = detail).into(),
            OAuth { error, description } => t!(id, error = error, description = description).into(),
            CallbackRejected { reason } => t!(id, reason = t!(*reason)).into(),
            FirstLoginRequired { message } | SignInFailed { message } => {
                t!(id, message = message).into()
            }
            NotSignedIn { profile } => t!(id, profile = profile).into(),
            SessionEnded { reason } => reason.message(),
            NoProfile | FlowExpired | FlowCancelled | MethodNeedsWindow => t!(id).into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
