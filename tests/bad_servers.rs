//! The client against servers that are down, slow, not NocoBase, or not TLS: each
//! gives one clear, typed error, never a panic or a hang.

use std::sync::Arc;
use std::time::Duration;

use nocobase_wecom_companion::core::nocobase::{http_client, Timeouts};
use nocobase_wecom_companion::core::opener::SystemOpener;
use nocobase_wecom_companion::core::paths::Paths;
use nocobase_wecom_companion::core::profile::Origin;
use nocobase_wecom_companion::core::secrets::MemoryStore;
use nocobase_wecom_companion::core::{Context, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn context(dir: &tempfile::TempDir) -> Context {
    let mut ctx = Context::new(
        Paths::under(dir.path()),
        Arc::new(MemoryStore::default()),
        Arc::new(SystemOpener),
    );
    ctx.http = http_client(Timeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(500),
    });
    ctx
}

/// A one-shot HTTP server answering every connection with `response`.
async fn serve(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(response.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = ctx.nocobase(&origin).app_info().await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.message().contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let origin = Origin::parse(&format!("http://{addr}")).unwrap();
    let err = ctx.nocobase(&origin).app_info().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_web_page_is_not_nocobase() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let url = serve(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 15\r\n\r\n<html>hi</html>",
    )
    .await;
    let err = ctx
        .nocobase(&Origin::parse(&url).unwrap())
        .public_authenticators()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotJson { status: 200, .. }), "{err:?}");
}

#[tokio::test]
async fn a_plain_404_says_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let url = serve(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nNot Found",
    )
    .await;
    let err = ctx
        .nocobase(&Origin::parse(&url).unwrap())
        .app_info()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_truncated_body_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let url = serve(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"data\":",
    )
    .await;
    let err = ctx
        .nocobase(&Origin::parse(&url).unwrap())
        .app_info()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotJson { .. } | Error::Unreachable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let url = serve("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let origin = Origin::parse(&url.replace("http://", "https://")).unwrap();
    let err = ctx.nocobase(&origin).app_info().await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_without_the_provider_has_no_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir);
    let url = serve(
        "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nNot Found",
    )
    .await;
    let found =
        nocobase_wecom_companion::core::oauth::discover(&ctx.http, &Origin::parse(&url).unwrap())
            .await
            .unwrap();
    assert!(found.is_none());
}
