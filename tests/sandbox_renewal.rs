//! Token policy and `x-new-token` renewal, replaying the recorded 30 s / 40 s / 150 s
//! timeline (nocobase-live.md §3) with the sandbox clock instead of sleeps.

mod support;

use std::time::Duration;

use nocobase_wecom_companion::sandbox::{Sandbox, SandboxOptions, TokenPolicy};
use serde_json::Value;
use support::{api_client, jwt_claims, sign_in_admin};

struct Api {
    http: reqwest::Client,
    origin: String,
}

impl Api {
    async fn call(&self, path: &str, token: &str, stream: bool) -> (u16, Option<String>, Value) {
        let mut req = self
            .http
            .get(format!("{}/api/{path}", self.origin))
            .bearer_auth(token);
        if stream {
            req = req.header("Accept", "text/event-stream");
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let renewed = resp
            .headers()
            .get("x-new-token")
            .map(|v| v.to_str().expect("ascii").to_string());
        if renewed.is_some() {
            let cookie = resp
                .headers()
                .get("set-cookie")
                .expect("renewal sets the cookie");
            assert!(cookie
                .to_str()
                .unwrap()
                .starts_with("nb_auth_token_main=eyJ"));
        }
        (status, renewed, resp.json().await.unwrap_or(Value::Null))
    }

    async fn check(&self, token: &str) -> (u16, Option<String>, Value) {
        self.call("auth:check", token, false).await
    }
}

fn code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_recorded_renewal_timeline() {
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    sb.set_token_policy(TokenPolicy {
        token_expiration: Duration::from_secs(30),
        expired_token_renew_limit: Duration::from_secs(40),
        session_expiration: Duration::from_secs(150),
    });
    let api = Api {
        http: api_client(),
        origin: sb.origin(),
    };

    // t+0: R0 (the one we keep renewing) and P0 (left alone).
    let r0 = sign_in_admin(&api.http, &api.origin).await;
    let p0 = sign_in_admin(&api.http, &api.origin).await;
    let (status, renewed, _) = api.check(&r0).await;
    assert_eq!((status, renewed), (200, None));

    // t+35: R0 expired, within the renew limit → served, with x-new-token R1.
    sb.set_clock_offset(35);
    let (status, r1, body) = api.check(&r0).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["username"], "nocobase");
    let r1 = r1.expect("R0 is renewed");
    let (old, new) = (jwt_claims(&r0), jwt_claims(&r1));
    assert_ne!(old["jti"], new["jti"]);
    assert_eq!(old["signInTime"], new["signInTime"]);
    assert_eq!(new["temp"], true);
    assert_eq!(
        new["exp"].as_i64().unwrap() - new["iat"].as_i64().unwrap(),
        30
    );

    // Same second: the 10 s renew cache hands out the same R1.
    let (status, again, _) = api.check(&r0).await;
    assert_eq!((status, again.as_deref()), (200, Some(r1.as_str())));
    let (status, none, _) = api.check(&r1).await;
    assert_eq!((status, none), (200, None));

    // t+48: R0 again, past the cache → TOKEN_RENEW_FAILED.
    sb.set_clock_offset(48);
    let (status, _, body) = api.check(&r0).await;
    assert_eq!((status, code(&body)), (401, "TOKEN_RENEW_FAILED"));

    // t+75: P0 is 45 s past exp (> 40 s limit).
    sb.set_clock_offset(75);
    let (status, _, body) = api.check(&p0).await;
    assert_eq!((status, code(&body)), (401, "EXPIRED_SESSION"));
    // Streams never renew.
    let (status, _, body) = api.call("auth:check", &r1, true).await;
    assert_eq!((status, code(&body)), (401, "SKIP_TOKEN_RENEW"));
    assert_eq!(
        body["errors"][0]["message"],
        "Stream api not allow renew token."
    );
    // Any authenticated action renews, not only auth:check.
    let (status, r2, body) = api
        .call("users:list?pageSize=1&fields=id", &r1, false)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["id"], 1);
    let r2 = r2.expect("R1 is renewed by users:list");

    // t+112: R2 → R3.
    sb.set_clock_offset(112);
    let (status, r3, _) = api.check(&r2).await;
    assert_eq!(status, 200);
    let r3 = r3.expect("R2 is renewed");
    let (status, none, _) = api.check(&r3).await;
    assert_eq!((status, none), (200, None));

    // t+153: past signInTime + 150 s; the session cap comes before renewal.
    sb.set_clock_offset(153);
    let (status, _, body) = api.check(&r3).await;
    assert_eq!((status, code(&body)), (401, "EXPIRED_SESSION"));

    // A fresh sign-in starts a new session.
    let fresh = sign_in_admin(&api.http, &api.origin).await;
    let (status, _, _) = api.check(&fresh).await;
    assert_eq!(status, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn public_actions_never_renew_and_a_shorter_policy_applies_to_old_tokens() {
    let sb = Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts");
    let api = Api {
        http: api_client(),
        origin: sb.origin(),
    };
    let token = sign_in_admin(&api.http, &api.origin).await;

    // Signed under 1 d; the policy drops to 30 s: the token now counts as expired by age.
    sb.set_token_policy(TokenPolicy {
        token_expiration: Duration::from_secs(30),
        expired_token_renew_limit: Duration::from_secs(40),
        session_expiration: Duration::from_secs(150),
    });
    sb.set_clock_offset(31);
    let (status, renewed, _) = api.call("app:getInfo", &token, false).await;
    assert_eq!(
        (status, renewed),
        (200, None),
        "public actions skip the auth check"
    );
    let (status, renewed, _) = api.check(&token).await;
    assert_eq!(status, 200);
    let renewed = renewed.expect("renewed because iat is older than the new token lifetime");
    let claims = jwt_claims(&renewed);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30
    );

    // The renewed token is an ordinary session token: signing out blocks it.
    let out = api
        .http
        .post(format!("{}/api/auth:signOut", api.origin))
        .bearer_auth(&renewed)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let (status, _, body) = api.check(&renewed).await;
    assert_eq!((status, code(&body)), (401, "BLOCKED_TOKEN"));
    sb.shutdown().await;
}
