//! The one seam through which the app opens URLs in the user's browser.
//!
//! Production uses the system's default browser (`open`). Tests replace it. The
//! `NWC_BROWSER` variable picks a command instead (`none` opens nothing and only
//! prints the URL), like `$BROWSER` does for other tools.

use url::Url;

use super::error::{Error, Result};

pub trait UrlOpener: Send + Sync {
    fn open(&self, url: &Url) -> Result<()>;
}

/// The default browser, or the `NWC_BROWSER` command.
pub struct SystemOpener;

impl UrlOpener for SystemOpener {
    fn open(&self, url: &Url) -> Result<()> {
        match std::env::var("NWC_BROWSER").ok().filter(|s| !s.is_empty()) {
            Some(cmd) if cmd == "none" => Ok(()),
            // Passed as one argument, never through a shell.
            Some(cmd) => std::process::Command::new(cmd)
                .arg(url.as_str())
                .spawn()
                .map(|_| ())
                .map_err(|e| Error::BrowserOpen {
                    detail: e.to_string(),
                }),
            None => open::that_detached(url.as_str()).map_err(|e| Error::BrowserOpen {
                detail: e.to_string(),
            }),
        }
    }
}
