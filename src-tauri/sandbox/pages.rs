//! Server-rendered pages standing in for NocoBase's SPA: sign-in, the desktop/mobile
//! workbench, the OAuth consent card, the device confirmation and the OAuth error page.
//! They work without JavaScript and give every actionable element a stable `id`.
//!
//! The SPA keeps its session in localStorage (`NOCOBASE_TOKEN`); here it is the cookie
//! `nb_auth_token_main`, and `?authenticator=&token=` on any page is consumed into it the way
//! NocoBase's AuthProvider does.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use rust_i18n::t;

use super::http::{self, encode_component, redirect, Params, Req};
use super::nocobase::{self, BasicSignIn, Checked, TOKEN_COOKIE};
use super::provider;
use super::state::Shared;
use super::wecom;

const CSS: &str = r#"
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f0f2f5;color:#1f1f1f}
.banner{background:#fff1b8;border-bottom:1px solid #ffd666;padding:6px 16px;font-size:13px;text-align:center}
main{max-width:440px;margin:40px auto;padding:0 16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.08);padding:24px}
h1{font-size:20px;margin:0 0 16px}label{display:block;margin:0 0 12px}input[type=text],input[type=password],input:not([type]){display:block;width:100%;padding:6px 10px;margin-top:4px;border:1px solid #d9d9d9;border-radius:6px;font:inherit}
button,.button{display:inline-block;width:100%;padding:8px 12px;border:0;border-radius:6px;background:#1677ff;color:#fff;font:inherit;text-align:center;text-decoration:none;cursor:pointer;margin:4px 0}
button.secondary,.button.secondary{background:#fff;color:#1f1f1f;border:1px solid #d9d9d9}
.wecom-skin button,.wecom-skin .button,.button.wecom{background:#0082ef}
.error{color:#cf1322;background:#fff1f0;border:1px solid #ffccc7;border-radius:6px;padding:8px 12px}
.muted,.hint{color:#8c8c8c;font-size:13px}.actions{list-style:none;padding:0;margin:0}
.divider{border-top:1px solid #f0f0f0;margin:16px 0}.qr{display:flex;justify-content:center;margin:8px 0}
.tiles{display:flex;gap:16px}.tile{display:flex;flex-direction:column;align-items:center;gap:6px;color:inherit;text-decoration:none}
.tile-icon{display:flex;width:56px;height:56px;border-radius:12px;background:#1677ff;color:#fff;font-weight:700;font-size:24px;align-items:center;justify-content:center}
code{background:#f5f5f5;padding:1px 4px;border-radius:4px}
"#;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Skin {
    NocoBase,
    WeCom,
}

/// The page frame: every page carries the sandbox banner.
pub(crate) fn render(locale: &str, title: &str, skin: Skin, body: &str) -> String {
    let skin = match skin {
        Skin::NocoBase => "nocobase-skin",
        Skin::WeCom => "wecom-skin",
    };
    format!(
        r#"<!doctype html>
<html lang="{locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{CSS}</style></head>
<body class="{skin}"><div id="sandbox-banner" class="banner" role="note">{banner}</div>
<main>{body}</main></body></html>"#,
        title = esc(title),
        banner = esc(&t!("sandbox.banner", locale = locale)),
    )
}

/// HTML text.
pub(crate) fn esc(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// A double-quoted attribute value.
pub(crate) fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

fn page(req: &Req, status: StatusCode, title: &str, body: &str) -> Response {
    http::html(
        status,
        render(req.page_locale(), title, Skin::NocoBase, body),
    )
}

pub(crate) fn routes(oauth_provider: bool) -> Router<Arc<Shared>> {
    let mut pages = Router::new()
        .route("/", get(|| async { redirect(StatusCode::FOUND, "/admin") }))
        .route("/signin", get(signin))
        .route("/admin", get(desktop))
        .route("/admin/{*rest}", get(desktop))
        .route("/m", get(mobile))
        .route("/m/{*rest}", get(mobile));
    if oauth_provider {
        pages = pages
            .route("/idp-oauth/interaction/{uid}", get(interaction))
            .route("/idp-oauth/error", get(oauth_error))
            .route("/idpOAuth/device", get(device));
    }
    let mut forms = Router::new()
        .route("/__sandbox/signin", post(signin_submit))
        .route("/__sandbox/signout", post(signout_submit));
    if oauth_provider {
        forms = forms
            .route("/idpOAuth/device/approve", post(device_approve))
            .route("/idpOAuth/device/cancel", post(device_cancel));
    }
    pages
        .layer(axum::middleware::from_fn(consume_token_params))
        .merge(forms)
}

// ---------------------------------------------------------------------------------------------
// The browser session

/// Values that may go into a cookie unchanged (JWTs and authenticator names).
fn cookie_safe(value: &str) -> bool {
    !value.is_empty()
        && value.len() < 8192
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn page_session_cookie(token: &str) -> String {
    format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax")
}

/// NocoBase's AuthProvider: `?authenticator=X&token=T` on any route stores the session and
/// replaces the URL with the same one without those two parameters.
async fn consume_token_params(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let params = Params::parse(req.uri().query().unwrap_or(""));
    let Some(token) = params.non_empty("token").map(str::to_string) else {
        return next.run(req).await;
    };
    let rest = params.encode_without(&["token", "authenticator"]);
    let path = req.uri().path();
    let location = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{rest}")
    };
    let mut resp = redirect(StatusCode::FOUND, &location);
    if cookie_safe(&token) {
        http::add_cookie(&mut resp, &page_session_cookie(&token));
        if let Some(name) = params.non_empty("authenticator").filter(|a| cookie_safe(a)) {
            http::add_cookie(
                &mut resp,
                &format!("nb_authenticator_main={name}; Path=/; HttpOnly; SameSite=Lax"),
            );
        }
    }
    resp
}

/// The signed-in user of this browser, if any (renewing its token like the SPA's
/// `auth:check` would).
fn browser_session(sb: &Shared, req: &Req) -> Option<Checked> {
    let token = req.cookie(TOKEN_COOKIE).filter(|t| !t.is_empty())?;
    nocobase::authenticate_token(sb, &token, false).ok()
}

/// How the page that sends the user to `/signin` writes `redirect`.
#[derive(Clone, Copy)]
enum RedirectStyle {
    /// The SPA's auth guard: `/signin?redirect=/admin` (live-recorded, slashes kept).
    ReadablePath,
    /// plugin-idp-oauth's interaction page: `redirect=%2Fidp-oauth%2Finteraction%2F<uid>`.
    Encoded,
}

/// For pages that need a signed-in user: inside WeCom with automatic login on, sign in
/// through in-client OAuth; otherwise go to `/signin?redirect=<return_to>`.
fn require_session(
    sb: &Shared,
    req: &Req,
    return_to: &str,
    style: RedirectStyle,
) -> Result<Checked, Response> {
    if let Some(checked) = browser_session(sb, req) {
        return Ok(checked);
    }
    if sb.wecom_auto_login() && wecom::in_wecom(req) {
        return Err(wecom::start_in_client_login(sb, return_to));
    }
    let encoded = encode_component(return_to);
    let encoded = match style {
        RedirectStyle::ReadablePath => encoded.replace("%2F", "/"),
        RedirectStyle::Encoded => encoded,
    };
    Err(redirect(
        StatusCode::FOUND,
        &format!("/signin?redirect={encoded}"),
    ))
}

/// Stores a renewed token, as the SPA does with `x-new-token`.
fn keep_session(mut resp: Response, checked: &Checked) -> Response {
    if let Some(renewal) = &checked.renewed {
        http::add_cookie(&mut resp, &page_session_cookie(&renewal.token));
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Sign-in

async fn signin(req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    let redirect_to = q.non_empty("redirect").unwrap_or("/admin");
    let error = q
        .non_empty("error")
        .map(|e| {
            format!(
                r#"<p id="signin-error" class="error" role="alert">{}</p>"#,
                esc(e)
            )
        })
        .unwrap_or_default();
    let wecom_href = format!(
        "/api/wecom:getAuthUrl?authenticator=wecom&redirect={}",
        encode_component(redirect_to)
    );
    let body = format!(
        r#"<section class="card"><h1>{title}</h1>{error}
<form id="basic-signin" method="post" action="/__sandbox/signin">
<label>{account}<input type="text" name="account" autocomplete="username"></label>
<label>{password}<input type="password" name="password" autocomplete="current-password"></label>
<input type="hidden" name="redirect" value="{redirect}">
<button type="submit">{submit}</button></form>
<div class="divider"></div>
<a id="wecom-signin" class="button wecom" href="{wecom_href}">{wecom}</a>
<p class="hint">{hint}<a id="wecom-first-login" href="/__sandbox/wecom/workbench">{hint_link}</a></p></section>"#,
        title = esc(&t!("sandbox.signin.title", locale = locale)),
        account = esc(&t!("sandbox.signin.account", locale = locale)),
        password = esc(&t!("sandbox.signin.password", locale = locale)),
        redirect = attr(redirect_to),
        submit = esc(&t!("sandbox.signin.submit", locale = locale)),
        wecom_href = attr(&wecom_href),
        wecom = esc(&t!("sandbox.signin.wecom", locale = locale)),
        hint = esc(&t!("sandbox.signin.first_login_hint", locale = locale)),
        hint_link = esc(&t!("sandbox.signin.first_login_link", locale = locale)),
    );
    page(
        &req,
        StatusCode::OK,
        &t!("sandbox.signin.title", locale = locale),
        &body,
    )
}

/// The basic sign-in form: signs in, stores the session, continues to `redirect`.
async fn signin_submit(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let locale = req.page_locale();
    let form = req.form();
    let redirect_to = sb.local_path(form.non_empty("redirect").unwrap_or("/admin"));
    let failure = |message: &str| {
        redirect(
            StatusCode::SEE_OTHER,
            &format!(
                "/signin?redirect={}&error={}",
                encode_component(&redirect_to),
                encode_component(message)
            ),
        )
    };
    match nocobase::basic_sign_in(
        &sb,
        form.get("account").unwrap_or(""),
        form.get("password").unwrap_or(""),
    ) {
        BasicSignIn::MissingAccount => failure(&t!("sandbox.nb.missing_account", locale = locale)),
        BasicSignIn::BadCredentials => failure(&t!("sandbox.nb.bad_credentials", locale = locale)),
        BasicSignIn::Ok { user, token } => {
            let mut resp = redirect(StatusCode::SEE_OTHER, &redirect_to);
            for cookie in nocobase::sign_in_cookies(&sb, &token, "basic", user.default_role()) {
                http::add_cookie(&mut resp, &cookie);
            }
            resp
        }
    }
}

async fn signout_submit(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    if let Some(checked) = browser_session(&sb, &req) {
        nocobase::sign_out(&sb, &checked);
    }
    let mut resp = redirect(StatusCode::SEE_OTHER, "/signin");
    for cookie in nocobase::sign_out_cookies() {
        http::add_cookie(&mut resp, &cookie);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Workbench

async fn desktop(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    workbench(&sb, &req, "sandbox.workbench.desktop")
}

async fn mobile(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    workbench(&sb, &req, "sandbox.workbench.mobile")
}

fn workbench(sb: &Shared, req: &Req, title_key: &str) -> Response {
    let checked = match require_session(sb, req, &req.path_and_query(), RedirectStyle::ReadablePath)
    {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let locale = req.page_locale();
    let title = t!(title_key, locale = locale);
    let body = format!(
        r#"<section class="card"><h1>{title}</h1>
<p>{label} <strong id="signed-in-as" data-username="{username}">{nickname}</strong></p>
<form id="signout" method="post" action="/__sandbox/signout"><button type="submit" class="secondary">{sign_out}</button></form></section>"#,
        title = esc(&title),
        label = esc(&t!("sandbox.workbench.signed_in_as", locale = locale)),
        username = attr(checked.user.username),
        nickname = esc(checked.user.nickname),
        sign_out = esc(&t!("sandbox.workbench.sign_out", locale = locale)),
    );
    keep_session(page(req, StatusCode::OK, &title, &body), &checked)
}

// ---------------------------------------------------------------------------------------------
// OAuth pages

async fn interaction(State(sb): State<Arc<Shared>>, Path(uid): Path<String>, req: Req) -> Response {
    let locale = req.page_locale();
    let title = t!("sandbox.consent.title", locale = locale);
    let Some(view) = provider::interaction_view(&sb, &uid) else {
        let body = format!(
            r#"<section class="card"><h1>{}</h1><p id="consent-missing" class="error">{}</p></section>"#,
            esc(&title),
            esc(&t!("sandbox.consent.not_found", locale = locale))
        );
        return page(&req, StatusCode::BAD_REQUEST, &title, &body);
    };
    let checked = match require_session(
        &sb,
        &req,
        &format!("/idp-oauth/interaction/{uid}"),
        RedirectStyle::Encoded,
    ) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let action = format!("/api/idpOAuth/interaction/{}", encode_component(&uid));
    let body = format!(
        r#"<section class="card"><h1>{title}</h1>
<p id="consent-client">{requests}</p>
<p class="muted">{who}</p><p class="muted">{details}</p>
<form id="consent-continue" method="post" action="{action}"><input type="hidden" name="submit" value="1"><button type="submit">{cont}</button></form>
<form id="consent-cancel" method="post" action="{action}"><input type="hidden" name="cancel" value="1"><button type="submit" class="secondary">{cancel}</button></form></section>"#,
        title = esc(&title),
        requests = esc(&t!(
            "sandbox.consent.requests",
            locale = locale,
            client = view.client_name
        )),
        who = esc(&t!(
            "sandbox.consent.signed_in_as",
            locale = locale,
            name = checked.user.nickname
        )),
        details = esc(&view.details),
        action = attr(&action),
        cont = esc(&t!("sandbox.consent.continue", locale = locale)),
        cancel = esc(&t!("sandbox.consent.cancel", locale = locale)),
    );
    keep_session(page(&req, StatusCode::OK, &title, &body), &checked)
}

async fn oauth_error(req: Req) -> Response {
    let locale = req.page_locale();
    let q = req.query();
    let title = t!("sandbox.error.title", locale = locale);
    let body = format!(
        r#"<section class="card"><h1>{title}</h1><p><code id="oauth-error">{error}</code></p>
<p id="oauth-error-description">{description}</p></section>"#,
        title = esc(&title),
        error = esc(q.get("error").unwrap_or("server_error")),
        description = esc(q.get("error_description").unwrap_or("")),
    );
    page(&req, StatusCode::OK, &title, &body)
}

async fn device(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    let checked = match require_session(
        &sb,
        &req,
        &req.path_and_query(),
        RedirectStyle::ReadablePath,
    ) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let locale = req.page_locale();
    let title = t!("sandbox.device.title", locale = locale);
    let content = match req.query().non_empty("user_code") {
        None => format!(
            r#"<form id="device-code-form" method="get" action="/idpOAuth/device">
<label>{label}<input type="text" name="user_code" autocomplete="off"></label><button type="submit">{submit}</button></form>"#,
            label = esc(&t!("sandbox.device.enter", locale = locale)),
            submit = esc(&t!("sandbox.device.submit", locale = locale)),
        ),
        Some(code) => match provider::device_view(&sb, code) {
            Some(view) if view.status == "pending" => {
                let hidden = format!(
                    r#"<input type="hidden" name="user_code" value="{}">"#,
                    attr(&view.user_code)
                );
                format!(
                    r#"<p id="device-client">{prompt}</p><p>{code_label}</p>
<form id="device-approve" method="post" action="/idpOAuth/device/approve">{hidden}<button type="submit">{approve}</button></form>
<form id="device-cancel" method="post" action="/idpOAuth/device/cancel">{hidden}<button type="submit" class="secondary">{cancel}</button></form>"#,
                    prompt = esc(&t!(
                        "sandbox.device.prompt",
                        locale = locale,
                        client = view.client_name,
                        name = checked.user.nickname
                    )),
                    code_label = esc(&t!(
                        "sandbox.device.code",
                        locale = locale,
                        code = view.user_code
                    )),
                    approve = esc(&t!("sandbox.device.approve", locale = locale)),
                    cancel = esc(&t!("sandbox.device.cancel", locale = locale)),
                )
            }
            Some(view) if view.status == "complete" || view.status == "cancelled" => {
                let key = if view.status == "complete" {
                    "sandbox.device.approved"
                } else {
                    "sandbox.device.cancelled"
                };
                format!(
                    r#"<p id="device-done" data-status="{}">{}</p>"#,
                    view.status,
                    esc(&t!(key, locale = locale))
                )
            }
            _ => format!(
                r#"<p id="device-invalid" class="error">{}</p>"#,
                esc(&t!("sandbox.device.invalid", locale = locale))
            ),
        },
    };
    let body = format!(
        r#"<section class="card"><h1>{}</h1>{content}</section>"#,
        esc(&title)
    );
    keep_session(page(&req, StatusCode::OK, &title, &body), &checked)
}

async fn device_approve(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    device_decision(&sb, &req, true)
}

async fn device_cancel(State(sb): State<Arc<Shared>>, req: Req) -> Response {
    device_decision(&sb, &req, false)
}

fn device_decision(sb: &Shared, req: &Req, approve: bool) -> Response {
    let code = req.form().get("user_code").unwrap_or("").to_string();
    let back = format!("/idpOAuth/device?user_code={}", encode_component(&code));
    let checked = match require_session(sb, req, &back, RedirectStyle::ReadablePath) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    // Whatever happened (decided, already decided, unknown), the page shows the outcome.
    let _ = provider::device_decide(sb, &code, checked.user.id, approve);
    keep_session(redirect(StatusCode::SEE_OTHER, &back), &checked)
}
