//! Keeping sessions alive against the sandbox's token policy, with both clocks moved
//! forward instead of sleeping.

mod support;

use std::sync::Arc;
use std::time::Duration;

use nocobase_wecom_companion::core::keeper::{self, Kept};
use nocobase_wecom_companion::core::nocobase::{AuthCode, Credentials};
use nocobase_wecom_companion::core::oauth::{discover, tokens};
use nocobase_wecom_companion::core::opener::SystemOpener;
use nocobase_wecom_companion::core::profile::SignInMethod;
use nocobase_wecom_companion::core::secrets::{MemoryStore, SecretStore};
use nocobase_wecom_companion::core::session::{EndReason, Grant, Tokens};
use nocobase_wecom_companion::core::signin::embedded::{classify, Landing};
use nocobase_wecom_companion::core::signin::{device, finish};
use nocobase_wecom_companion::core::{Context, Error};
use nocobase_wecom_companion::sandbox::{SandboxOptions, TokenPolicy};
use support::app::{wecom_qr_sign_in, App};
use support::browser::Browser;

fn policy(token: u64, renew: u64, session: u64) -> SandboxOptions {
    SandboxOptions {
        token_policy: TokenPolicy {
            token_expiration: Duration::from_secs(token),
            expired_token_renew_limit: Duration::from_secs(renew),
            session_expiration: Duration::from_secs(session),
        },
        ..SandboxOptions::default()
    }
}

/// 张三 signs in with the QR (device flow) from inside WeCom.
async fn device_sign_in(app: &App) {
    let started = device::begin(&app.ctx, &app.profile).await.unwrap();
    let mut phone = Browser::wecom("ZhangSan");
    phone
        .goto(&started.verification_uri_complete())
        .await
        .unwrap();
    phone.click("device-approve").await.unwrap();
    started.finish(&app.ctx, &app.profile).await.unwrap();
}

/// 张三 signs in through an app window (the embedded method): a NocoBase token session.
async fn embedded_sign_in(app: &App) -> Tokens {
    let mut window = Browser::new();
    window
        .goto(&app.url("/signin?redirect=%2Fadmin"))
        .await
        .unwrap();
    wecom_qr_sign_in(&mut window, "ZhangSan").await;
    let token = window
        .visited
        .iter()
        .find_map(|u| match classify(&app.profile.origin, u) {
            Landing::SignedIn { token, .. } => Some(token),
            _ => None,
        })
        .expect("signed in");
    let tokens = Tokens {
        access: token,
        refresh: None,
    };
    finish(
        &app.ctx,
        &app.profile,
        SignInMethod::Embedded,
        Grant::NocoBaseToken,
        tokens.clone(),
        None,
    )
    .await
    .unwrap();
    tokens
}

fn stored(app: &App) -> Tokens {
    app.ctx.sessions.load("test").unwrap().expect("a session").1
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_the_grant() {
    let app = App::default().await;
    device_sign_in(&app).await;
    let before = stored(&app);
    let Kept::Renewed(_, after) = keeper::keep_alive(&app.ctx, &app.profile, true)
        .await
        .unwrap()
    else {
        panic!("a forced refresh must refresh");
    };
    assert_ne!(before.refresh, after.refresh, "refresh tokens rotate");
    assert_eq!(
        stored(&app).refresh,
        after.refresh,
        "the new refresh token is stored"
    );

    // Someone replays the old refresh token: the server revokes the whole grant.
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let Grant::OAuth { client_id } = app.ctx.sessions.load("test").unwrap().unwrap().0.grant else {
        panic!("an OAuth session");
    };
    let replay = tokens::refresh(
        &app.ctx.http,
        &app.profile.origin,
        &metadata,
        &client_id,
        before.refresh.as_ref().unwrap(),
    )
    .await;
    assert!(
        matches!(&replay, Err(Error::OAuth { error, .. }) if error == "invalid_grant"),
        "{replay:?}"
    );

    let err = keeper::keep_alive(&app.ctx, &app.profile, true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionEnded {
                reason: EndReason::GrantEnded
            }
        ),
        "{err:?}"
    );
    let (session, ended) = app.ctx.sessions.peek("test").unwrap();
    assert!(session.is_none());
    assert_eq!(ended.unwrap().reason, EndReason::GrantEnded);
}

#[tokio::test]
async fn oauth_refreshes_before_expiry_until_the_session_cap() {
    let mut app = App::start(policy(60, 60, 300)).await;
    device_sign_in(&app).await;
    // Not due yet: nothing happens.
    assert!(matches!(
        keeper::keep_alive(&app.ctx, &app.profile, false)
            .await
            .unwrap(),
        Kept::Fresh(..)
    ));
    // 50 s later the 60 s token is within its refresh margin.
    app.advance_clock(50);
    assert!(matches!(
        keeper::keep_alive(&app.ctx, &app.profile, false)
            .await
            .unwrap(),
        Kept::Renewed(..)
    ));
    keeper::verify(&app.ctx, &app.profile).await.unwrap();
    // Past the 5 min grant: the session ends with a reason the user understands.
    app.advance_clock(301);
    let err = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionEnded {
                reason: EndReason::GrantEnded
            }
        ),
        "{err:?}"
    );
    assert!(
        err.message().contains("Session limit reached"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn nocobase_tokens_are_renewed_by_x_new_token_until_the_session_limit() {
    let mut app = App::start(policy(30, 40, 150)).await;
    let t0 = embedded_sign_in(&app).await;

    // t+35: expired but renewable; one auth:check renews it and the new token is adopted.
    app.advance_clock(35);
    let Kept::Renewed(_, t1) = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap()
    else {
        panic!("renewal was due");
    };
    assert_ne!(t1.access, t0.access);
    assert_eq!(stored(&app).access, t1.access);

    // t+48: the old token, renewed more than 10 s ago, is dead.
    app.advance_clock(48);
    let old = app
        .ctx
        .nocobase(&app.profile.origin)
        .check(&Credentials {
            token: &t0.access,
            authenticator: Some("wecom"),
        })
        .await;
    assert!(
        matches!(
            old.result,
            Err(Error::Auth {
                code: AuthCode::TokenRenewFailed,
                ..
            })
        ),
        "{:?}",
        old.result
    );

    // t+75: the renewed token expired in turn and is renewed again.
    app.advance_clock(75);
    let Kept::Renewed(_, t2) = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap()
    else {
        panic!("renewal was due");
    };
    assert_ne!(t2.access, t1.access);

    // t+153: past the 150 s session: it ends, and says why.
    app.advance_clock(153);
    let err = keeper::keep_alive(&app.ctx, &app.profile, false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionEnded {
                reason: EndReason::SessionLimit
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        app.ctx.sessions.peek("test").unwrap().1.unwrap().reason,
        EndReason::SessionLimit
    );
}

#[tokio::test]
async fn a_signed_out_access_token_is_recovered_by_one_refresh() {
    let app = App::default().await;
    device_sign_in(&app).await;
    let access = stored(&app).access;
    // Sign out elsewhere with the access token: NocoBase blocks that access token.
    let out = app
        .ctx
        .nocobase(&app.profile.origin)
        .sign_out(&Credentials {
            token: &access,
            authenticator: None,
        })
        .await;
    out.result.unwrap();
    let session = keeper::verify(&app.ctx, &app.profile).await.unwrap();
    assert_eq!(session.user.nickname.as_deref(), Some("张三"));
    assert_ne!(
        stored(&app).access,
        access,
        "refreshed to a new access token"
    );
}

#[tokio::test]
async fn two_refreshers_at_once_never_reuse_a_refresh_token() {
    let app = App::default().await;
    device_sign_in(&app).await;
    // A second "process": its own context over the same files and the same secrets.
    let secrets: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let (session, tokens) = app.ctx.sessions.load("test").unwrap().unwrap();
    let one = Context::new(
        app.ctx.paths.clone(),
        secrets.clone(),
        Arc::new(SystemOpener),
    );
    let two = Context::new(app.ctx.paths.clone(), secrets, Arc::new(SystemOpener));
    one.sessions.save(&session, &tokens).unwrap();

    let (a, b) = tokio::join!(
        keeper::keep_alive(&one, &app.profile, true),
        keeper::keep_alive(&two, &app.profile, true)
    );
    a.unwrap();
    b.unwrap();
    // Had both used the same refresh token, the server would have revoked the grant.
    keeper::keep_alive(&one, &app.profile, true).await.unwrap();
    keeper::verify(&two, &app.profile).await.unwrap();
}

#[tokio::test]
async fn sign_out_revokes_the_grant_on_the_server() {
    let app = App::default().await;
    device_sign_in(&app).await;
    let (session, tokens) = app.ctx.sessions.load("test").unwrap().unwrap();
    let Grant::OAuth { client_id } = session.grant else {
        panic!("an OAuth session");
    };
    assert!(
        nocobase_wecom_companion::core::signout::sign_out(&app.ctx, &app.profile)
            .await
            .unwrap()
    );
    assert!(app.ctx.sessions.load("test").unwrap().is_none());
    // On the server: the refresh token no longer works, the access token is blocked.
    let metadata = discover(&app.ctx.http, &app.profile.origin)
        .await
        .unwrap()
        .unwrap();
    let refresh = tokens::refresh(
        &app.ctx.http,
        &app.profile.origin,
        &metadata,
        &client_id,
        tokens.refresh.as_ref().unwrap(),
    )
    .await;
    assert!(
        matches!(&refresh, Err(Error::OAuth { error, .. }) if error == "invalid_grant"),
        "{refresh:?}"
    );
    let check = app
        .ctx
        .nocobase(&app.profile.origin)
        .check(&Credentials {
            token: &tokens.access,
            authenticator: None,
        })
        .await;
    assert!(
        matches!(
            check.result,
            Err(Error::Auth {
                code: AuthCode::BlockedToken,
                ..
            })
        ),
        "{:?}",
        check.result
    );
}
