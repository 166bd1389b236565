//! Shared test helpers. Each test crate uses only some of them.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod desktop;
pub mod mock_shell;
#[cfg(feature = "real-nocobase")]
pub mod real;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

/// A PKCE pair (S256).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let bytes: [u8; 32] = rand::random();
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// The claims of a JWT, read without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The header of a JWT, read without verifying it.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("JWT part is base64url");
    serde_json::from_slice(&bytes).expect("JWT part is JSON")
}

/// A plain HTTP client: no redirects followed, no cookies (like a native app's API client).
pub fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client builds")
}

/// Signs in as the root account with the basic authenticator and returns the token.
pub async fn sign_in_admin(http: &reqwest::Client, origin: &str) -> String {
    let resp = http
        .post(format!("{origin}/api/auth:signIn"))
        .header("X-Authenticator", "basic")
        .json(&serde_json::json!({ "account": "admin@nocobase.com", "password": "admin123" }))
        .send()
        .await
        .expect("signIn request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("signIn body");
    body["data"]["token"].as_str().expect("token").to_string()
}

/// A throwaway loopback listener standing in for a native app's OAuth callback: answers
/// every request with a small page and reports the path and query it received.
pub async fn loopback_callback() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(uri.to_string());
            axum::response::Html("<p id=\"app-callback\">You can close this tab.</p>")
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, rx)
}
