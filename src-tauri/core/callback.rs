//! Pending browser sign-ins and the one place an OAuth callback URL is checked.
//!
//! A callback is accepted only while a flow is pending, only at exactly the redirect
//! URI that flow registered, only with that flow's `state` (high entropy, single use,
//! ten minutes), only from the expected issuer (`iss`, RFC 9207). Anything else is
//! refused without touching the pending flow, so a forged link cannot cancel a real
//! sign-in either.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oauth2::PkceCodeVerifier;
use url::Url;

use super::error::{Error, Result};

/// How long a started sign-in may wait for its callback.
pub const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// What the app remembers about a sign-in it started.
pub struct PendingFlow {
    pub state: String,
    pub verifier: PkceCodeVerifier,
    pub redirect_uri: String,
    pub issuer: String,
    pub client_id: String,
    pub started: Instant,
}

/// A callback that passed every check: exchange `code` with `flow.verifier`.
pub struct AcceptedCallback {
    pub flow: PendingFlow,
    pub code: String,
}

pub struct PendingFlows {
    flows: Mutex<HashMap<String, PendingFlow>>,
    lifetime: Duration,
}

impl Default for PendingFlows {
    fn default() -> Self {
        PendingFlows::with_lifetime(STATE_LIFETIME)
    }
}

impl PendingFlows {
    pub fn new() -> PendingFlows {
        PendingFlows::default()
    }

    pub fn with_lifetime(lifetime: Duration) -> PendingFlows {
        PendingFlows {
            flows: Mutex::new(HashMap::new()),
            lifetime,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingFlow>> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, flow: PendingFlow) {
        let mut flows = self.lock();
        let lifetime = self.lifetime;
        flows.retain(|_, f| f.started.elapsed() < lifetime);
        flows.insert(flow.state.clone(), flow);
    }

    /// Drops every pending flow (a new sign-in replaces an abandoned one).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Drops a flow (cancelled or finished elsewhere).
    pub fn cancel(&self, state: &str) {
        self.lock().remove(state);
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether a flow is waiting on this exact redirect URI (the deep-link router uses
    /// this to accept `/oauth/callback` only while it is expected).
    pub fn expects(&self, redirect_uri: &str) -> bool {
        self.lock()
            .values()
            .any(|f| f.redirect_uri == redirect_uri && f.started.elapsed() < self.lifetime)
    }

    /// Checks a callback URL. On success the flow is removed (its `state` is spent).
    /// An OAuth error answer (`?error=…`) for a valid state also spends the flow and
    /// comes back as `Error::OAuth`.
    pub fn accept(&self, callback: &str) -> Result<AcceptedCallback> {
        let reject = |reason: &'static str| Error::CallbackRejected { reason };
        let url = Url::parse(callback).map_err(|_| reject("callback.malformed"))?;
        let mut params: HashMap<String, String> = HashMap::new();
        for (k, v) in url.query_pairs() {
            // A repeated parameter is ambiguous: which `state` did the server mean?
            if params.insert(k.into_owned(), v.into_owned()).is_some() {
                return Err(reject("callback.duplicate_parameter"));
            }
        }
        let base = redirect_base(&url);
        let state = params.get("state").ok_or(reject("callback.no_state"))?;

        let mut flows = self.lock();
        let flow = flows.get(state).ok_or(reject("callback.unknown_state"))?;
        if flow.redirect_uri != base {
            return Err(reject("callback.wrong_redirect"));
        }
        if flow.started.elapsed() >= self.lifetime {
            flows.remove(state);
            return Err(Error::FlowExpired);
        }
        if params.get("iss").map(String::as_str) != Some(flow.issuer.as_str()) {
            return Err(reject("callback.wrong_issuer"));
        }
        let flow = flows.remove(state).expect("looked up above");
        drop(flows);
        if let Some(error) = params.get("error") {
            return Err(Error::OAuth {
                error: error.clone(),
                description: params.get("error_description").cloned().unwrap_or_default(),
            });
        }
        let code = params
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or(reject("callback.no_code"))?
            .clone();
        Ok(AcceptedCallback { flow, code })
    }
}

/// The callback URL without query or fragment, to compare with a redirect URI.
fn redirect_base(url: &Url) -> String {
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    base.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:5000/callback";
    const ISS: &str = "http://127.0.0.1:13000/api";

    fn flows_with(state: &str) -> PendingFlows {
        flows_living(state, STATE_LIFETIME)
    }

    fn flows_living(state: &str, lifetime: Duration) -> PendingFlows {
        let flows = PendingFlows::with_lifetime(lifetime);
        flows.insert(PendingFlow {
            state: state.into(),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            redirect_uri: REDIRECT.into(),
            issuer: ISS.into(),
            client_id: "c".into(),
            started: Instant::now(),
        });
        flows
    }

    fn cb(query: &str) -> String {
        format!("{REDIRECT}?{query}")
    }

    fn reason(r: Result<AcceptedCallback>) -> &'static str {
        match r {
            Err(Error::CallbackRejected { reason }) => reason,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => "accepted",
        }
    }

    #[test]
    fn accepts_once_then_refuses_the_replay() {
        let flows = flows_with("S1");
        let ok = flows
            .accept(&cb(
                "code=C&state=S1&iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi",
            ))
            .unwrap();
        assert_eq!(ok.code, "C");
        assert_eq!(
            reason(flows.accept(&cb(
                "code=C&state=S1&iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi"
            ))),
            "callback.unknown_state"
        );
    }

    #[test]
    fn refuses_forgeries_without_cancelling_the_real_flow() {
        let flows = flows_with("S1");
        let iss = "iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi";
        assert_eq!(
            reason(flows.accept(&cb(&format!("code=C&state=WRONG&{iss}")))),
            "callback.unknown_state"
        );
        assert_eq!(
            reason(flows.accept(&cb("code=C&state=S1&iss=https%3A%2F%2Fevil%2Fapi"))),
            "callback.wrong_issuer"
        );
        assert_eq!(
            reason(flows.accept(&cb("code=C&state=S1"))),
            "callback.wrong_issuer"
        );
        assert_eq!(
            reason(flows.accept(&format!(
                "http://127.0.0.1:5000/other?code=C&state=S1&{iss}"
            ))),
            "callback.wrong_redirect"
        );
        assert_eq!(
            reason(flows.accept(&format!(
                "http://127.0.0.1:5001/callback?code=C&state=S1&{iss}"
            ))),
            "callback.wrong_redirect"
        );
        assert_eq!(
            reason(flows.accept(&cb(&format!("code=C&state=S1&state=S2&{iss}")))),
            "callback.duplicate_parameter"
        );
        assert_eq!(reason(flows.accept(&cb("code=C"))), "callback.no_state");
        assert_eq!(reason(flows.accept("not a url")), "callback.malformed");
        // The genuine callback still works after all that.
        assert!(flows.accept(&cb(&format!("code=C&state=S1&{iss}"))).is_ok());
    }

    #[test]
    fn an_error_answer_spends_the_flow() {
        let flows = flows_with("S1");
        let r = flows.accept(&cb(
            "error=access_denied&state=S1&iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi",
        ));
        assert!(matches!(r, Err(Error::OAuth { ref error, .. }) if error == "access_denied"));
        assert!(flows.is_empty());
    }

    #[test]
    fn nothing_is_accepted_without_a_pending_flow() {
        let flows = PendingFlows::new();
        assert_eq!(
            reason(flows.accept(&cb(
                "code=C&state=S1&iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi"
            ))),
            "callback.unknown_state"
        );
        assert!(!flows.expects(REDIRECT));
    }

    #[test]
    fn expired_flows_are_refused() {
        let flows = flows_living("S1", Duration::ZERO);
        assert!(matches!(
            flows.accept(&cb(
                "code=C&state=S1&iss=http%3A%2F%2F127.0.0.1%3A13000%2Fapi"
            )),
            Err(Error::FlowExpired)
        ));
    }
}
