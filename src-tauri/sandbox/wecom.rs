//! WeCom, simulated (it cannot be reached from here), and NocoBase's WeCom authenticator.
//!
//! * WeCom side: the QR login panel (`/wwlogin/sso/login`), the phone that scans and confirms,
//!   the in-client OAuth page (`/connect/oauth2/authorize`, `snsapi_privateinfo` consent),
//!   the Workbench with the NocoBase app tile, and a "phone" entry that opens a link inside
//!   the WeCom client as a given member.
//! * NocoBase side (plugin-auth-wecom, closed source): `wecom:getAuthUrl` and the callback
//!   `wecom:redirect`, which matches members by mobile number and keeps the binding.
//!
//! The first-login rule (nocobase-auth.md §3.5): QR login yields only a userid, so a member
//! who never authorized the app inside the WeCom client has no known mobile and fails with
//! "Failed to get mobile". Authorizing once in the client (Workbench → app) cures that.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rust_i18n::t;
use serde_json::{json, Value};

use super::http::{self, append_query, encode_component, redirect, Req};
use super::nocobase;
use super::pages::{attr, esc, render, Skin};
use super::state::{Shared, World};

/// The simulated corp (CorpID) and self-built app (AgentId).
pub(crate) const CORP_ID: &str = "ww5andb0x";
pub(crate) const AGENT_ID: &str = "1000002";
/// Who holds the phone running the WeCom client.
pub(crate) const MEMBER_COOKIE: &str = "sandbox_wecom_member";
/// Set by the sandbox's WeCom entry pages: the browser now plays WeCom's in-app browser.
pub(crate) const CLIENT_COOKIE: &str = "sandbox_wecom_client";
/// WeCom codes: single use, 5 minutes.
const CODE_TTL: i64 = 300;
const STATE_TTL: i64 = 600;

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub userid: &'static str,
    pub name: &'static str,
    pub mobile: &'static str,
    /// Has granted the app `snsapi_privateinfo` (phone number and email) in the client.
    pub authorized: bool,
}

pub(crate) struct WecomState {
    pub members: Vec<Member>,
    /// `usersAuthenticators` rows of the WeCom authenticator: WeCom userid → NocoBase user.
    bindings: HashMap<String, u64>,
    /// The plugin's pending sign-ins: state → where to go afterwards.
    pending: HashMap<String, PendingSignIn>,
    /// WeCom: QR panels waiting for a scan.
    qr: HashMap<String, Callback>,
    /// WeCom: consent pages waiting for Allow/Deny.
    consents: HashMap<String, (String, Callback)>,
    /// WeCom: issued login codes → member.
    codes: HashMap<String, (String, i64)>,
}

struct PendingSignIn {
    redirect: String,
    expires_at: i64,
}

/// Where WeCom sends the code: the app's redirect_uri and the echoed state.
#[derive(Clone)]
struct Callback {
    redirect_uri: String,
    state: Option<String>,
    expires_at: i64,
}

impl WecomState {
    pub fn new() -> Self {
        let member = |userid, name, mobile, authorized| Member {
            userid,
            name,
            mobile,
            authorized,
        };
        WecomState {
            members: vec![
                member("ZhangSan", "张三", "13800000001", true),
                member("LiSi", "李四", "13800000002", false),
                member("WangWu", "王五", "13800000003", false),
            ],
            // 张三 has signed in with WeCom before.
            bindings: HashMap::from([("ZhangSan".to_string(), 2)]),
            pending: HashMap::new(),
            qr: HashMap::new(),
            consents: HashMap::new(),
            codes: HashMap::new(),
        }
    }

    fn member(&self, userid: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.userid == userid)
    }

    fn prune(&mut self, now: i64) {
        self.pending.retain(|_, p| p.expires_at > now);
        self.qr.retain(|_, c| c.expires_at > now);
        self.consents.retain(|_, (_, c)| c.expires_at > now);
        self.codes.retain(|_, (_, exp)| *exp > now);
    }
}

/// The authenticator as `authenticators:publicList` lists it. The option key names of the
/// closed-source plugin are not known; `autoSignup`/`autoLogin` are our best guess.
pub(crate) fn public_entry(sb: &Shared) -> Value {
    json!({
        "name": "wecom",
        "authType": "WeCom",
        "authTypeTitle": "{{t(\"WeCom\", {\"ns\":\"@nocobase/plugin-auth-wecom\"})}}",
        "title": "企业微信",
        "options": { "autoSignup": false, "autoLogin": sb.wecom_auto_login() },
    })
}

/// Whether the request comes from WeCom's in-app browser (real UA: `… wxwork/4.1.6 …`).
pub(crate) fn in_wecom(req: &Req) -> bool {
    req.header("user-agent")
        .is_some_and(|ua| ua.to_ascii_lowercase().contains("wxwork/"))
        || req.cookie(CLIENT_COOKIE).as_deref() == Some("1")
}

/// `Sandbox::member_authorized`: by WeCom userid or NocoBase username (case-insensitive).
pub(crate) fn member_authorized(sb: &Shared, name: &str) -> bool {
    let w = sb.world();
    let by_userid = w
        .wecom
        .members
        .iter()
        .find(|m| m.userid.eq_ignore_ascii_case(name));
    let member = by_userid.or_else(|| {
        let phone = w.users.iter().find(|u| u.username == name)?.phone?;
        w.wecom.members.iter().find(|m| m.mobile == phone)
    });
    member.is_some_and(|m| m.authorized)
}

pub(crate) fn members_json(sb: &Shared) -> Value {
    let w = sb.world();
    w.wecom
        .members
        .iter()
        .map(|m| json!({ "username": m.userid, "nickname": m.name, "authorized": m.authorized }))
        .collect()
}

fn callback_url(sb: &Shared) -> String {
    format!("{}/api/wecom:redirect", sb.origin)
}

fn remember_sign_in(sb: &Shared, redirect_to: &str) -> String {
    let state = http::random_alnum(32);
    let now = sb.now_secs();
    let mut w = sb.world();
    w.wecom.prune(now);
    w.wecom.pending.insert(
        state.clone(),
        PendingSignIn {
            redirect: sb.local_path(redirect_to),
            expires_at: now + STATE_TTL,
        },
    );
    state
}

fn qr_login_url(sb: &Shared, state: &str) -> String {
    let callback = callback_url(sb);
    append_query(
        "/__sandbox/wecom/sso/login",
        &[
            ("login_type", "CorpApp"),
            ("appid", CORP_ID),
            ("agentid", AGENT_ID),
            ("redirect_uri", &callback),
            ("state", state),
        ],
    )
}

fn in_client_oauth_url(sb: &Shared, state: &str) -> String {
    let callback = callback_url(sb);
    // The real link ends in `#wechat_redirect`; browsers never send the fragment.
    append_query(
        "/__sandbox/wecom/oauth2/authorize",
        &[
            ("appid", CORP_ID),
            ("redirect_uri", &callback),
            ("response_type", "code"),
            ("scope", "snsapi_privateinfo"),
            ("state", state),
            ("agentid", AGENT_ID),
        ],
    )
}

/// Automatic login inside the WeCom client: straight to in-client OAuth, then back to
/// `redirect_to` signed in.
pub(crate) fn start_in_client_login(sb: &Shared, redirect_to: &str) -> Response {
    let state = remember_sign_in(sb, redirect_to);
    redirect(StatusCode::FOUND, &in_client_oauth_url(sb, &state))
}

/// `wecom:getAuthUrl?authenticator=wecom&redirect=…`: the sign-in button. A navigation gets a
/// 302, an XHR (`Accept: application/json`) gets `{"data": url}`.
pub(crate) fn get_auth_url(sb: &Shared, req: &Req) -> Response {
    let body = req.body_params().unwrap_or(Value::Null);
    let redirect_to = req
        .query()
        .non_empty("redirect")
        .map(str::to_string)
        .or_else(|| {
            body.get("redirect")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "/admin".to_string());
    let state = remember_sign_in(sb, &redirect_to);
    let url = if in_wecom(req) {
        in_client_oauth_url(sb, &state)
    } else {
        qr_login_url(sb, &state)
    };
    if req.wants_json() {
        http::data(json!(url))
    } else {
        redirect(StatusCode::FOUND, &url)
    }
}

/// Where the plugin sends a failed sign-in: back to the sign-in page with the message.
fn sign_in_failure(redirect_to: &str, message: &str) -> Response {
    redirect(
        StatusCode::FOUND,
        &format!(
            "/signin?redirect={}&authenticator=wecom&error={}",
            encode_component(redirect_to),
            encode_component(message)
        ),
    )
}

enum Outcome {
    SignedIn { token: String, role: &'static str },
    Failed(String),
}

/// `wecom:redirect?code&state`: WeCom's callback into NocoBase.
pub(crate) fn callback(sb: &Shared, req: &Req) -> Response {
    let locale = req.api_locale();
    let query = req.query();
    let now = sb.now_secs();
    let (redirect_to, outcome) = {
        let mut w = sb.world();
        w.wecom.prune(now);
        let pending = query
            .non_empty("state")
            .and_then(|s| w.wecom.pending.remove(s));
        let Some(pending) = pending else {
            drop(w);
            // An unknown or replayed state: the authenticator's validate() yields no user,
            // so BaseAuth reports NOT_EXIST_USER's message.
            return sign_in_failure("/admin", &t!("sandbox.nb.not_exist_user", locale = locale));
        };
        let outcome = match query.non_empty("code") {
            // WeCom sends no code when the member declines.
            None => Outcome::Failed(t!("sandbox.nb.wecom.no_code", locale = locale).into_owned()),
            Some(code) => match w.wecom.codes.remove(code) {
                Some((userid, _)) => sign_in_member(sb, &mut w, &userid, locale),
                // An unknown or reused code: WeCom's getuserinfo answers 40029.
                None => {
                    Outcome::Failed(t!("sandbox.nb.wecom.api_failed", locale = locale).into_owned())
                }
            },
        };
        (pending.redirect, outcome)
    };
    match outcome {
        Outcome::Failed(message) => sign_in_failure(&redirect_to, &message),
        Outcome::SignedIn { token, role } => {
            let location = append_query(
                &redirect_to,
                &[("authenticator", "wecom"), ("token", &token)],
            );
            let mut resp = redirect(StatusCode::FOUND, &location);
            for cookie in nocobase::sign_in_cookies(sb, &token, "wecom", role) {
                http::add_cookie(&mut resp, &cookie);
            }
            resp
        }
    }
}

/// The plugin's user matching: the member's binding, else the mobile number (known only
/// once the member granted `snsapi_privateinfo` in the client), else "Create users
/// automatically", which is off.
fn sign_in_member(sb: &Shared, w: &mut World, userid: &str, locale: &str) -> Outcome {
    let failed = |key: &str| Outcome::Failed(t!(key, locale = locale).into_owned());
    if let Some(user_id) = w.wecom.bindings.get(userid).copied() {
        return sign_in_user(sb, w, user_id, locale);
    }
    let Some(member) = w.wecom.member(userid).cloned() else {
        return failed("sandbox.nb.wecom.failed_userid");
    };
    // QR login yields only a userid: the recorded first-login failure.
    if !member.authorized {
        return failed("sandbox.nb.wecom.failed_mobile");
    }
    let user = w.users.iter().find(|u| u.phone == Some(member.mobile));
    match user.map(|u| u.id) {
        Some(user_id) => {
            w.wecom.bindings.insert(userid.to_string(), user_id);
            sign_in_user(sb, w, user_id, locale)
        }
        None => failed("sandbox.nb.wecom.user_not_found"),
    }
}

fn sign_in_user(sb: &Shared, w: &mut World, user_id: u64, locale: &str) -> Outcome {
    match w.user(user_id).map(|u| u.default_role()) {
        None => {
            Outcome::Failed(t!("sandbox.nb.wecom.user_not_found", locale = locale).into_owned())
        }
        Some(role) => Outcome::SignedIn {
            token: nocobase::issue_session(sb, w, user_id, "wecom"),
            role,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated WeCom pages

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sandbox/wecom/sso/login", get(qr_login))
        .route("/__sandbox/wecom/sso/scan", get(scan))
        .route("/__sandbox/wecom/sso/confirm", post(confirm))
        .route("/__sandbox/wecom/sso/cancel", post(cancel))
        .route("/__sandbox/wecom/oauth2/authorize", get(oauth2_authorize))
        .route("/__sandbox/wecom/oauth2/allow", post(oauth2_allow))
        .route("/__sandbox/wecom/oauth2/deny", post(oauth2_deny))
        .route("/__sandbox/wecom/phone", get(phone))
        .route("/__sandbox/wecom/workbench", get(workbench))
}

fn page(req: &Req, status: StatusCode, title: &str, body: &str) -> Response {
    http::html(status, render(req.page_locale(), title, Skin::WeCom, body))
}

fn message_page(req: &Req, status: StatusCode, message: &str) -> Response {
    let title = t!("sandbox.wecom.title", locale = req.page_locale());
    page(
        req,
        status,
        &title,
        &format!(
            r#"<p id="wecom-message" class="error">{}</p>"#,
            esc(message)
        ),
    )
}

/// WeCom only redirects to the app's trusted domain (host and port, scheme ignored).
fn trusted_redirect_uri(sb: &Shared, uri: &str) -> bool {
    let (Ok(target), Ok(own)) = (url::Url::parse(uri), url::Url::parse(&sb.origin)) else {
        return false;
    };
    target.host_str() == own.host_str()
        && target.port_or_known_default() == own.port_or_known_default()
}

fn issue_code(sb: &Shared, userid: &str, target: &Callback) -> Response {
    let code = http::random_b64(32);
    let now = sb.now_secs();
    sb.world()
        .wecom
        .codes
        .insert(code.clone(), (userid.to_string(), now + CODE_TTL));
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = target.state.as_deref() {
        pairs.push(("state", state));
    }
    redirect(
        StatusCode::FOUND,
        &append_query(&target.redirect_uri, &pairs),
    )
}

/// Declining: WeCom returns to the app with the state only.
fn declined(target: &Callback) -> Response {
    let pairs: Vec<(&str, &str)> = target
        .state
        .as_deref()
        .map(|s| ("state", s))
        .into_iter()
        .collect();
    let location = if pairs.is_empty() {
        target.redirect_uri.clone()
    } else {
        append_query(&target.redirect_uri, &pairs)
    };
    redirect(StatusCode::FOUND, &location)
}

/// The QR panel (`login.work.weixin.qq.com/wwlogin/sso/login`).
async fn qr_login(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    let redirect_uri = q.non_empty("redirect_uri").unwrap_or("");
    if q.get("login_type") != Some("CorpApp")
        || q.get("appid") != Some(CORP_ID)
        || q.get("agentid") != Some(AGENT_ID)
    {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.bad_request", locale = locale),
        );
    }
    if !trusted_redirect_uri(&sb, redirect_uri) {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.bad_domain", locale = locale),
        );
    }
    let key = http::random_b64(16);
    let now = sb.now_secs();
    let members: Vec<Member> = {
        let mut w = sb.world();
        w.wecom.prune(now);
        w.wecom.qr.insert(
            key.clone(),
            Callback {
                redirect_uri: redirect_uri.to_string(),
                state: q.get("state").map(str::to_string),
                expires_at: now + STATE_TTL,
            },
        );
        w.wecom.members.clone()
    };
    let scan_base = format!("/__sandbox/wecom/sso/scan?key={}", encode_component(&key));
    let qr = qr_svg(&format!("{}{scan_base}", sb.origin));
    let links: String = members
        .iter()
        .map(|m| {
            format!(
                r#"<li><a class="button" id="scan-{id}" href="{href}">{label}</a></li>"#,
                id = attr(m.userid),
                href = attr(&format!(
                    "{scan_base}&member={}",
                    encode_component(m.userid)
                )),
                label = esc(&t!(
                    "sandbox.wecom.qr.scan_as",
                    locale = locale,
                    name = m.name
                )),
            )
        })
        .collect();
    let body = format!(
        r#"<section class="card"><h1>{title}</h1><div class="qr" id="wecom-qr">{qr}</div><p>{hint}</p>
<p class="muted">{sim}</p><ul class="actions">{links}</ul></section>"#,
        title = esc(&t!("sandbox.wecom.qr.title", locale = locale)),
        hint = esc(&t!("sandbox.wecom.qr.hint", locale = locale)),
        sim = esc(&t!("sandbox.wecom.qr.simulation", locale = locale)),
    );
    page(
        &req,
        StatusCode::OK,
        &t!("sandbox.wecom.qr.title", locale = locale),
        &body,
    )
}

fn qr_svg(content: &str) -> String {
    qrcode::QrCode::new(content.as_bytes())
        .map(|code| {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(180, 180)
                .build();
            // Drop the XML prolog so the SVG can sit inline in HTML.
            svg.find("<svg")
                .map(|i| svg[i..].to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// The phone after scanning: "Confirm sign-in to NocoBase?".
async fn scan(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    let key = q.get("key").unwrap_or("");
    let member = {
        let w = sb.world();
        if !w.wecom.qr.contains_key(key) {
            None
        } else {
            q.get("member").and_then(|m| w.wecom.member(m).cloned())
        }
    };
    let Some(member) = member else {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.qr.expired", locale = locale),
        );
    };
    let hidden = format!(
        r#"<input type="hidden" name="key" value="{}"><input type="hidden" name="member" value="{}">"#,
        attr(key),
        attr(member.userid)
    );
    let body = format!(
        r#"<section class="card phone"><h1>{title}</h1><p id="wecom-account">{who}</p>
<form id="wecom-confirm" method="post" action="/__sandbox/wecom/sso/confirm">{hidden}<button type="submit">{confirm}</button></form>
<form id="wecom-cancel" method="post" action="/__sandbox/wecom/sso/cancel">{hidden}<button type="submit" class="secondary">{cancel}</button></form></section>"#,
        title = esc(&t!("sandbox.wecom.confirm.title", locale = locale)),
        who = esc(&t!(
            "sandbox.wecom.confirm.account",
            locale = locale,
            name = member.name
        )),
        confirm = esc(&t!("sandbox.wecom.confirm.confirm", locale = locale)),
        cancel = esc(&t!("sandbox.wecom.confirm.cancel", locale = locale)),
    );
    page(
        &req,
        StatusCode::OK,
        &t!("sandbox.wecom.confirm.title", locale = locale),
        &body,
    )
}

/// Takes the QR panel for a scan decision (single use) and the scanning member.
fn take_scan(sb: &Shared, req: &Req) -> Option<(String, Callback)> {
    let form = req.form();
    let mut w = sb.world();
    let userid = form
        .get("member")
        .and_then(|m| w.wecom.member(m))
        .map(|m| m.userid.to_string())?;
    let target = w.wecom.qr.remove(form.get("key")?)?;
    Some((userid, target))
}

async fn confirm(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    match take_scan(&sb, &req) {
        Some((userid, target)) => issue_code(&sb, &userid, &target),
        None => message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.qr.expired", locale = req.page_locale()),
        ),
    }
}

async fn cancel(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    match take_scan(&sb, &req) {
        Some((_, target)) => declined(&target),
        None => message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.qr.expired", locale = req.page_locale()),
        ),
    }
}

/// The member holding the phone, when the request comes from inside the WeCom client.
fn current_member(sb: &Shared, req: &Req) -> Option<Member> {
    let userid = req.cookie(MEMBER_COOKIE)?;
    sb.world().wecom.member(&userid).cloned()
}

/// A list of "open as <member>" links, for pages reached without a member.
fn member_picker(sb: &Shared, locale: &str, open: &str) -> String {
    let members = sb.world().wecom.members.clone();
    let links: String = members
        .iter()
        .map(|m| {
            format!(
                r#"<li><a class="button" id="phone-{id}" href="/__sandbox/wecom/phone?member={id_enc}&amp;open={open}">{name}</a></li>"#,
                id = attr(m.userid),
                id_enc = encode_component(m.userid),
                open = attr(&encode_component(open)),
                name = esc(m.name),
            )
        })
        .collect();
    format!(
        r#"<p>{}</p><ul class="actions">{links}</ul>"#,
        esc(&t!("sandbox.wecom.no_member", locale = locale))
    )
}

/// In-client OAuth (`open.weixin.qq.com/connect/oauth2/authorize`).
async fn oauth2_authorize(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    if !in_wecom(&req) {
        return message_page(
            &req,
            StatusCode::OK,
            &t!("sandbox.wecom.open_in_client", locale = locale),
        );
    }
    let redirect_uri = q.non_empty("redirect_uri").unwrap_or("");
    if q.get("appid") != Some(CORP_ID) || q.get("response_type") != Some("code") {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.bad_request", locale = locale),
        );
    }
    if !trusted_redirect_uri(&sb, redirect_uri) {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.bad_domain", locale = locale),
        );
    }
    let Some(member) = current_member(&sb, &req) else {
        let title = t!("sandbox.wecom.title", locale = locale);
        let body = format!(
            r#"<section class="card">{}</section>"#,
            member_picker(&sb, locale, &req.path_and_query())
        );
        return page(&req, StatusCode::OK, &title, &body);
    };
    let target = Callback {
        redirect_uri: redirect_uri.to_string(),
        state: q.get("state").map(str::to_string),
        expires_at: sb.now_secs() + STATE_TTL,
    };
    // snsapi_privateinfo needs the agentid and, once, the member's manual consent.
    let wants_privateinfo =
        q.get("scope") == Some("snsapi_privateinfo") && q.get("agentid") == Some(AGENT_ID);
    if !wants_privateinfo || member.authorized {
        return issue_code(&sb, member.userid, &target);
    }
    let ticket = http::random_b64(16);
    sb.world()
        .wecom
        .consents
        .insert(ticket.clone(), (member.userid.to_string(), target));
    let hidden = format!(
        r#"<input type="hidden" name="ticket" value="{}">"#,
        attr(&ticket)
    );
    let body = format!(
        r#"<section class="card phone"><h1>{title}</h1><p>{text}</p>
<form id="wecom-allow" method="post" action="/__sandbox/wecom/oauth2/allow">{hidden}<button type="submit">{allow}</button></form>
<form id="wecom-deny" method="post" action="/__sandbox/wecom/oauth2/deny">{hidden}<button type="submit" class="secondary">{deny}</button></form></section>"#,
        title = esc(&t!("sandbox.wecom.consent.title", locale = locale)),
        text = esc(&t!(
            "sandbox.wecom.consent.body",
            locale = locale,
            name = member.name
        )),
        allow = esc(&t!("sandbox.wecom.consent.allow", locale = locale)),
        deny = esc(&t!("sandbox.wecom.consent.deny", locale = locale)),
    );
    page(
        &req,
        StatusCode::OK,
        &t!("sandbox.wecom.consent.title", locale = locale),
        &body,
    )
}

fn take_consent(sb: &Shared, req: &Req) -> Option<(String, Callback)> {
    let ticket = req.form().get("ticket").map(str::to_string)?;
    sb.world().wecom.consents.remove(&ticket)
}

async fn oauth2_allow(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let Some((userid, target)) = take_consent(&sb, &req) else {
        return message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.qr.expired", locale = req.page_locale()),
        );
    };
    if let Some(member) = sb
        .world()
        .wecom
        .members
        .iter_mut()
        .find(|m| m.userid == userid)
    {
        member.authorized = true;
    }
    issue_code(&sb, &userid, &target)
}

async fn oauth2_deny(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    match take_consent(&sb, &req) {
        Some((_, target)) => declined(&target),
        None => message_page(
            &req,
            StatusCode::BAD_REQUEST,
            &t!("sandbox.wecom.qr.expired", locale = req.page_locale()),
        ),
    }
}

fn client_cookies(resp: &mut Response, userid: &str) {
    http::add_cookie(
        resp,
        &format!("{MEMBER_COOKIE}={userid}; Path=/; SameSite=Lax"),
    );
    http::add_cookie(resp, &format!("{CLIENT_COOKIE}=1; Path=/; SameSite=Lax"));
}

/// `/__sandbox/wecom/phone?member=LiSi&open=<url>`: "LiSi opens this link in WeCom".
async fn phone(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let q = req.query();
    let member = q
        .get("member")
        .and_then(|m| sb.world().wecom.member(m).cloned());
    let Some(member) = member else {
        return message_page(
            &req,
            StatusCode::NOT_FOUND,
            &t!("sandbox.wecom.unknown_member", locale = req.page_locale()),
        );
    };
    let target = match q.non_empty("open") {
        Some(open) => sb.local_path(open),
        None => format!(
            "/__sandbox/wecom/workbench?member={}",
            encode_component(member.userid)
        ),
    };
    let mut resp = redirect(StatusCode::FOUND, &target);
    client_cookies(&mut resp, member.userid);
    resp
}

/// WeCom › Workbench with the NocoBase app tile (the documented first-login path).
async fn workbench(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    let title = t!("sandbox.wecom.workbench.title", locale = locale);
    let Some(member_id) = q.non_empty("member") else {
        let members = sb.world().wecom.members.clone();
        let links: String = members
            .iter()
            .map(|m| {
                format!(
                    r#"<li><a class="button" id="workbench-{id}" href="/__sandbox/wecom/workbench?member={id_enc}">{name}</a></li>"#,
                    id = attr(m.userid),
                    id_enc = encode_component(m.userid),
                    name = esc(m.name),
                )
            })
            .collect();
        let body = format!(
            r#"<section class="card"><h1>{}</h1><p>{}</p><ul class="actions">{links}</ul></section>"#,
            esc(&title),
            esc(&t!("sandbox.wecom.workbench.pick", locale = locale))
        );
        return page(&req, StatusCode::OK, &title, &body);
    };
    let member = sb.world().wecom.member(member_id).cloned();
    let Some(member) = member else {
        return message_page(
            &req,
            StatusCode::NOT_FOUND,
            &t!("sandbox.wecom.unknown_member", locale = locale),
        );
    };
    // The authenticator's "workbench application homepage link": /m unless given on-origin.
    let home = q
        .non_empty("home")
        .and_then(|h| sb.same_origin_path(h))
        .unwrap_or_else(|| "/m".to_string());
    let body = format!(
        r#"<section class="card"><h1>{title}</h1><p id="wecom-member">{who}</p>
<div class="tiles"><a class="tile" id="app-nocobase" href="{href}"><span class="tile-icon">N</span>{app}</a></div></section>"#,
        title = esc(&title),
        who = esc(&t!(
            "sandbox.wecom.workbench.member",
            locale = locale,
            name = member.name
        )),
        href = attr(&format!("{}{home}", sb.origin)),
        app = esc(&t!("sandbox.wecom.workbench.app", locale = locale)),
    );
    let mut resp = page(&req, StatusCode::OK, &title, &body);
    client_cookies(&mut resp, member.userid);
    resp
}
