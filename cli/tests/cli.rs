//! The `m2m` command as a customer's CI job runs it, against the whole API in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use m2m_tests as support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use serde_json::{Value, json};
use support::*;

/// Runs `m2m` with only the given environment, on the blocking pool so the server keeps serving.
async fn m2m(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m2m"));
    command.args(args).env_clear().env("HOME", home);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The environment `m2m tokens` runs in as `t`'s vendor credential, against `t`.
fn as_vendor(t: &TestApp) -> [(&str, &str); 3] {
    [
        ("M2M_URL", t.base.as_str()),
        ("M2M_VENDOR_CLIENT_ID", t.vendor_client_id.as_str()),
        ("M2M_VENDOR_SECRET", t.vendor_secret.as_str()),
    ]
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn login_caches_a_private_session_and_token_prints_a_valid_jwt() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
        ("M2M_SECRET", secret.as_str()),
    ];

    let login = m2m(home.path(), &["login"], &env).await;
    assert!(login.status.success(), "{}", stderr(&login));
    let session_file = home.path().join(".config/m2m/session.json");
    let cached = std::fs::read_to_string(&session_file).unwrap();
    assert!(!cached.contains(&secret), "the secret is never cached");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&session_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the user can read the session");
        let folder = std::fs::metadata(session_file.parent().unwrap()).unwrap();
        let folder = folder.permissions().mode() & 0o777;
        assert_eq!(folder, 0o700, "a folder m2m makes is the user's alone");
    }

    let token = m2m(home.path(), &["token"], &[]).await;
    assert!(token.status.success(), "{}", stderr(&token));
    let claims = t
        .app
        .credentials(ISSUER)
        .verify_access_token(&stdout(&token))
        .unwrap();
    assert_eq!(claims.sub, client_id);
    let again = m2m(home.path(), &["token"], &[]).await;
    assert_eq!(
        stdout(&again),
        stdout(&token),
        "a fresh token is reused, not refreshed"
    );
}

#[tokio::test]
async fn token_refreshes_before_expiry() {
    let t = spawn_app_with(Backing::Embedded, |s| s.access_token_ttl_seconds = 30).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
        ("M2M_SECRET", secret.as_str()),
    ];
    assert!(m2m(home.path(), &["login"], &env).await.status.success());
    let session: Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join(".config/m2m/session.json")).unwrap(),
    )
    .unwrap();

    let token = m2m(home.path(), &["token"], &[]).await;
    assert!(token.status.success(), "{}", stderr(&token));
    assert_ne!(
        stdout(&token),
        session["accessToken"].as_str().unwrap(),
        "30 s left: refreshed"
    );
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&stdout(&token))
            .is_ok()
    );
    let renewed: Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join(".config/m2m/session.json")).unwrap(),
    )
    .unwrap();
    assert_ne!(
        renewed["refreshToken"], session["refreshToken"],
        "the used refresh token is replaced"
    );
}

#[tokio::test]
async fn bad_credentials_and_an_unreachable_server_get_clear_messages() {
    let t = spawn_app(Backing::Embedded).await;
    let home = tempfile::tempdir().unwrap();
    let wrong = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11"),
        ("M2M_SECRET", "m2mt_wrong"),
    ];
    let login = m2m(home.path(), &["login"], &wrong).await;
    assert!(!login.status.success());
    assert!(
        stderr(&login).contains("refused the credentials"),
        "{}",
        stderr(&login)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = [
        ("M2M_URL", url.as_str()),
        ("M2M_CLIENT_ID", "x"),
        ("M2M_SECRET", "y"),
    ];
    let login = m2m(home.path(), &["login"], &env).await;
    assert!(!login.status.success());
    assert!(
        stderr(&login).contains(&format!("cannot reach {url}")),
        "{}",
        stderr(&login)
    );

    let token = m2m(home.path(), &["token"], &[]).await;
    assert!(stderr(&token).contains("m2m login"), "{}", stderr(&token));
}

#[tokio::test]
async fn a_vendor_creates_lists_rotates_and_deletes_tokens() {
    let t = spawn_app(Backing::Embedded).await;
    t.tenant(&t.vendor_token().await, "acme").await;
    let home = tempfile::tempdir().unwrap();
    let env = as_vendor(&t);
    let created = m2m(
        home.path(),
        &[
            "tokens",
            "create",
            "--tenant",
            "acme",
            "--description",
            "ci",
        ],
        &env,
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let created: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let client_id = created["clientId"].as_str().unwrap();
    assert!(created["secret"].as_str().unwrap().starts_with("m2mt_"));

    let listed = m2m(home.path(), &["tokens", "list", "--tenant", "acme"], &env).await;
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed[0]["clientId"], client_id);
    assert!(listed[0].get("secret").is_none());

    let rotate = [
        "tokens",
        "rotate",
        client_id,
        "--tenant",
        "acme",
        "--grace-minutes",
        "5",
    ];
    let rotated = m2m(home.path(), &rotate, &env).await;
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let rotated: Value = serde_json::from_str(&stdout(&rotated)).unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, created["secret"].as_str().unwrap());
    for secret in [new_secret, created["secret"].as_str().unwrap()] {
        let exchanged = t.exchange(EXCHANGE_V1, client_id, secret).await;
        assert_eq!(exchanged.status.as_u16(), 200, "both work during the grace");
    }

    let deleted = m2m(
        home.path(),
        &["tokens", "delete", client_id, "--tenant", "acme"],
        &env,
    )
    .await;
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(stdout(&deleted), format!("deleted {client_id}"));
}

/// Every token belongs to a tenant: `--tenant` or `M2M_TENANT` names it, and without either
/// the command says so.
#[tokio::test]
async fn the_tenant_comes_from_the_flag_or_the_environment() {
    let t = spawn_app(Backing::Embedded).await;
    t.tenant(&t.vendor_token().await, "acme").await;
    let home = tempfile::tempdir().unwrap();
    let env = as_vendor(&t);
    let by_env = [env.as_slice(), &[("M2M_TENANT", "acme")]].concat();
    let listed = m2m(home.path(), &["tokens", "list"], &by_env).await;
    assert_eq!(stdout(&listed), "[]", "{}", stderr(&listed));
    let nowhere = m2m(home.path(), &["tokens", "list"], &env).await;
    assert!(!nowhere.status.success());
    let said = stderr(&nowhere);
    assert!(said.contains("--tenant or set M2M_TENANT"), "{said}");
}

/// Runs `m2m` with only `env`, and `input` on its standard input.
async fn m2m_piped(home: &Path, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(env!("CARGO_BIN_EXE_m2m"));
    command.args(args).env_clear().env("HOME", home);
    command.envs(env.iter().copied());
    command.stdin(Stdio::piped());
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// A secret piped on standard input logs in (and a vendor secret manages tokens), so no flag
/// or variable holds it; an empty input is refused.
#[tokio::test]
async fn secrets_can_be_piped_on_standard_input() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let home = tempfile::tempdir().unwrap();
    let login_env = [("M2M_URL", t.base.as_str()), ("M2M_CLIENT_ID", &client_id)];
    let login_args = ["login", "--secret-stdin"];
    let line = format!("{secret}\n");
    let login = m2m_piped(home.path(), &login_args, &login_env, &line).await;
    assert!(login.status.success(), "{}", stderr(&login));
    let empty = m2m_piped(home.path(), &login_args, &login_env, "").await;
    assert!(
        stderr(&empty).contains("holds no secret"),
        "{}",
        stderr(&empty)
    );

    let vendor_env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_VENDOR_CLIENT_ID", t.vendor_client_id.as_str()),
    ];
    let args = [
        "tokens",
        "list",
        "--tenant",
        "acme",
        "--vendor-secret-stdin",
    ];
    let listed = m2m_piped(home.path(), &args, &vendor_env, &t.vendor_secret).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
}

/// `m2m login` with `HOME` in `home`; the session file's path.
async fn logged_in(t: &TestApp, home: &Path) -> std::path::PathBuf {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
        ("M2M_SECRET", secret.as_str()),
    ];
    let login = m2m(home, &["login"], &env).await;
    assert!(login.status.success(), "{}", stderr(&login));
    home.join(".config/m2m/session.json")
}

/// The session is written as a new file in a private folder: a link planted where it goes is
/// replaced, not followed, and an existing file's wider mode is not kept.
#[cfg(unix)]
#[tokio::test]
async fn the_session_file_is_never_written_through_a_link_or_with_an_old_mode() {
    use std::os::unix::fs::PermissionsExt;
    let t = spawn_app(Backing::Embedded).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/m2m");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = home.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("session.json")).unwrap();

    let session = logged_in(&t, home.path()).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let written = std::fs::symlink_metadata(&session).unwrap();
    assert!(written.file_type().is_file(), "the link is replaced");
    assert_eq!(written.permissions().mode() & 0o777, 0o600);

    std::fs::set_permissions(&session, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = logged_in(&t, home.path()).await;
    let mode = std::fs::metadata(&again).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "not the old file's mode");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Six `m2m token` runs at once on a session about to expire: one refreshes (the refresh token
/// is single use), the others wait for it and print what it saved.
#[tokio::test]
async fn concurrent_token_runs_refresh_once_and_share_the_result() {
    let t = spawn_app(Backing::Embedded).await;
    let home = tempfile::tempdir().unwrap();
    let session = logged_in(&t, home.path()).await;
    let mut before: Value =
        serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    before["expiresAt"] = json!(0); // due for a refresh; the next one is good for an hour
    std::fs::write(&session, before.to_string()).unwrap();

    let runs = (0..6).map(|_| m2m(home.path(), &["token"], &[]));
    let printed: Vec<Output> = futures::future::join_all(runs).await;
    for run in &printed {
        assert!(run.status.success(), "{}", stderr(run));
    }
    let tokens: std::collections::BTreeSet<String> = printed.iter().map(stdout).collect();
    assert_eq!(tokens.len(), 1, "one refresh, shared: {tokens:?}");
    let token = tokens.into_iter().next().unwrap();
    assert_ne!(token, before["accessToken"].as_str().unwrap(), "refreshed");
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&token)
            .is_ok()
    );
}

/// `m2m tokens delete` takes a clientId and nothing else: a path in its place is refused before
/// any request, so it cannot reach another resource.
#[tokio::test]
async fn tokens_delete_refuses_anything_but_a_client_id() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    t.tenant(&vendor, "acme").await;
    let role = json!({"id": "r2", "key": "auditor"});
    let made = t.post(ROLES, &[("x-access-token", &vendor)], &role).await;
    assert_eq!(made.status, reqwest::StatusCode::CREATED, "{:?}", made.body);
    let home = tempfile::tempdir().unwrap();
    let env = as_vendor(&t);
    for bad in [
        "../../../roles/v1/r2",
        "r2",
        "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d1%2F",
    ] {
        let deleted = m2m(
            home.path(),
            &["tokens", "delete", bad, "--tenant", "acme"],
            &env,
        )
        .await;
        assert!(!deleted.status.success(), "{bad}");
        assert!(
            stderr(&deleted).contains("is not a clientId"),
            "{}",
            stderr(&deleted)
        );
    }
    let roles = t.get(ROLES, &[("x-access-token", &vendor)]).await;
    assert_eq!(
        roles.body.as_array().map(Vec::len),
        Some(1),
        "{:?}",
        roles.body
    );
    let upper = "0B7E5C8E8D474A599A344B1B0C1F7D11";
    let deleted = m2m(
        home.path(),
        &["tokens", "delete", upper, "--tenant", "acme"],
        &env,
    )
    .await;
    assert!(
        !stderr(&deleted).contains("is not a clientId"),
        "a clientId in capitals and without hyphens is one: {}",
        stderr(&deleted)
    );
}

/// A fresh session cached at `path` by hand, so that `m2m token` prints it without a server.
fn cached_session(path: &Path) {
    let cached = json!({"url": "http://127.0.0.1:9", "clientId": LOGIN_AS,
        "accessToken": "a.b.c", "refreshToken": "r.s.t", "expiresAt": i64::from(i32::MAX)});
    std::fs::write(path, cached.to_string()).unwrap();
}

const LOGIN_AS: &str = "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11";

/// A folder the session is in that m2m did not make (here shared, 1777) keeps its mode.
#[cfg(unix)]
#[tokio::test]
async fn an_existing_session_folder_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let shared = home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let session = shared.join("session.json");
    cached_session(&session);
    let env = [("M2M_SESSION_FILE", session.to_str().unwrap())];
    let token = m2m(home.path(), &["token"], &env).await;
    assert!(token.status.success(), "{}", stderr(&token));
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1777);
}

/// A link planted where the lock file goes is refused, and what it points to is neither
/// created nor opened to write.
#[cfg(unix)]
#[tokio::test]
async fn a_linked_lock_file_is_refused_and_its_target_untouched() {
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    cached_session(&session);
    let env = [("M2M_SESSION_FILE", session.to_str().unwrap())];
    let absent = home.path().join("absent");
    let present = home.path().join("present");
    std::fs::write(&present, "untouched").unwrap();
    for target in [&absent, &present] {
        let lock = home.path().join("session.lock");
        let _ = std::fs::remove_file(&lock);
        std::os::unix::fs::symlink(target, &lock).unwrap();
        let token = m2m(home.path(), &["token"], &env).await;
        assert!(!token.status.success(), "{}", stdout(&token));
        assert!(stderr(&token).contains("lock file"), "{}", stderr(&token));
    }
    assert!(!absent.exists(), "a dangling link's target is not created");
    assert_eq!(std::fs::read_to_string(&present).unwrap(), "untouched");

    // A FIFO planted as the lock is refused, not waited on.
    let lock = home.path().join("session.lock");
    std::fs::remove_file(&lock).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&lock).status();
    assert!(made.unwrap().success());
    let run = m2m(home.path(), &["token"], &env);
    let token = tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .expect("m2m waited on a FIFO");
    assert!(
        stderr(&token).contains("not a regular file"),
        "{}",
        stderr(&token)
    );
}

/// A session file that is a link, or far larger than any session, is refused without being
/// read whole.
#[cfg(unix)]
#[tokio::test]
async fn a_linked_or_huge_session_file_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    let real = home.path().join("real.json");
    cached_session(&real);
    std::os::unix::fs::symlink(&real, &session).unwrap();
    let env = [("M2M_SESSION_FILE", session.to_str().unwrap())];
    let token = m2m(home.path(), &["token"], &env).await;
    assert!(!token.status.success(), "{}", stdout(&token));
    assert!(
        stderr(&token).contains("not a regular file"),
        "{}",
        stderr(&token)
    );

    std::fs::remove_file(&session).unwrap();
    std::fs::write(&session, vec![b' '; 1 << 20]).unwrap();
    let token = m2m(home.path(), &["token"], &env).await;
    assert!(!token.status.success(), "{}", stdout(&token));
    assert!(stderr(&token).contains("larger than"), "{}", stderr(&token));
}

/// A stand-in for the server on 127.0.0.1: whatever it is asked, it answers `head` (a status
/// line and headers) and then `body`, `times` over; it keeps what it was sent and counts the
/// body bytes it got out.
struct StandIn {
    url: String,
    received: Arc<Mutex<Vec<u8>>>,
    sent: Arc<AtomicUsize>,
}

impl StandIn {
    async fn start(head: String, body: Vec<u8>, times: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (received, sent) = (
            Arc::<Mutex<Vec<u8>>>::default(),
            Arc::<AtomicUsize>::default(),
        );
        let (keep, count) = (Arc::clone(&received), Arc::clone(&sent));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let request = read_request(&mut socket).await;
                keep.lock().unwrap().extend(request);
                if socket.write_all(head.as_bytes()).await.is_err() {
                    continue;
                }
                for _ in 0..times {
                    if socket.write_all(&body).await.is_err() {
                        break;
                    }
                    count.fetch_add(body.len(), Ordering::Relaxed);
                }
                let _ = socket.shutdown().await;
            }
        });
        Self {
            url,
            received,
            sent,
        }
    }

    /// Answers every request with `status` (e.g. "200 OK") and `body` as JSON.
    async fn json(status: &str, body: &Value) -> Self {
        let body = body.to_string().into_bytes();
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            body.len()
        );
        Self::start(head, body, 1).await
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

/// One HTTP/1.1 request: its head and a `content-length` body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    let deadline = std::time::Duration::from_secs(5);
    loop {
        let read = tokio::time::timeout(deadline, socket.read(&mut buffer)).await;
        let Ok(Ok(n @ 1..)) = read else {
            return request;
        };
        request.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            if request.len() >= end + 4 + length {
                return request;
            }
        }
    }
}

/// What a login answers when all is well.
fn issued() -> Value {
    json!({"accessToken": "a.b.c", "refreshToken": "r.s.t", "expiresIn": 3600})
}

/// `m2m login` against `url` with the secret `secret`.
async fn login_at(home: &Path, url: &str, secret: &str) -> Output {
    let env = [
        ("M2M_URL", url),
        ("M2M_CLIENT_ID", LOGIN_AS),
        ("M2M_SECRET", secret),
    ];
    m2m(home, &["login"], &env).await
}

/// A 307 would re-send the login's secret, or the vendor's, to where it points: m2m follows no
/// redirect, and says where it pointed without the user and password in it.
#[tokio::test]
async fn a_redirect_is_an_error_and_the_secret_stays_put() {
    let elsewhere = StandIn::json("200 OK", &json!({"token": "v.w.x"})).await;
    let port = elsewhere.url.rsplit(':').next().unwrap();
    let head = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://eve:pw-in-location@127.0.0.1:\
         {port}/auth/vendor\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let redirecting = StandIn::start(head, Vec::new(), 1).await;
    let home = tempfile::tempdir().unwrap();
    let login = login_at(home.path(), &redirecting.url, "m2mt_login-secret").await;
    let vendor_env = [
        ("M2M_URL", redirecting.url.as_str()),
        ("M2M_VENDOR_CLIENT_ID", "vendor"),
        ("M2M_VENDOR_SECRET", "vendor-secret"),
    ];
    let list = ["tokens", "list", "--tenant", "acme"];
    let vendor = m2m(home.path(), &list, &vendor_env).await;
    for run in [&login, &vendor] {
        assert!(!run.status.success());
        let said = stderr(run);
        assert!(said.contains("307") && said.contains("127.0.0.1"), "{said}");
        assert!(!said.contains("pw-in-location"), "{said}");
    }
    assert_eq!(elsewhere.received(), "", "nothing reached the other server");
    assert!(redirecting.received().contains("m2mt_login-secret"));
}

/// Plain http is for this machine only: to another host a secret would cross the network
/// unencrypted, so m2m refuses before it connects, unless told otherwise (and then it warns).
#[tokio::test]
async fn plain_http_to_another_host_is_refused_unless_allowed() {
    let home = tempfile::tempdir().unwrap();
    let refused = login_at(home.path(), "http://example.invalid", "s").await;
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(said.contains("--allow-insecure-http"), "{said}");
    assert!(
        !said.contains("cannot reach"),
        "no connection is tried: {said}"
    );

    let env = [
        ("M2M_URL", "http://example.invalid"),
        ("M2M_CLIENT_ID", LOGIN_AS),
        ("M2M_SECRET", "s"),
        ("M2M_ALLOW_INSECURE_HTTP", "1"),
    ];
    let allowed = m2m(home.path(), &["login"], &env).await;
    let said = stderr(&allowed);
    assert!(
        said.contains("warning") && said.contains("cannot reach"),
        "{said}"
    );
}

/// An endless answer is refused once it passes the limit: m2m reads it piece by piece, so the
/// server gets little of 256 MiB out before m2m hangs up.
#[tokio::test]
async fn a_huge_answer_is_refused_and_not_held() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
    let server = StandIn::start(head.into(), vec![b' '; 64 * 1024], 4096).await;
    let home = tempfile::tempdir().unwrap();
    let login = login_at(home.path(), &server.url, "s").await;
    assert!(!login.status.success());
    assert!(stderr(&login).contains("larger than"), "{}", stderr(&login));
    let sent = server.sent.load(Ordering::Relaxed);
    assert!(sent < 32 << 20, "{sent} bytes went out");
}

/// Server text reaches the terminal without escapes: error messages lose control characters,
/// listed data has them escaped, and a token that is not one is refused.
#[tokio::test]
async fn server_text_is_printed_without_terminal_escapes() {
    let rude = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{202e}";
    let home = tempfile::tempdir().unwrap();
    let refusing = StandIn::json("400 Bad Request", &json!({"errors": [rude]})).await;
    let failed = login_at(home.path(), &refusing.url, "s").await;
    let escaped_token = json!({"accessToken": rude, "refreshToken": "r", "expiresIn": 60});
    let issuing = StandIn::json("200 OK", &escaped_token).await;
    let refused = login_at(home.path(), &issuing.url, "s").await;
    let listing = StandIn::json("200 OK", &json!({"token": "v.w.x", "description": rude})).await;
    let env = [
        ("M2M_URL", listing.url.as_str()),
        ("M2M_VENDOR_CLIENT_ID", "vendor"),
        ("M2M_VENDOR_SECRET", "vendor-secret"),
    ];
    let listed = m2m(home.path(), &["tokens", "list", "--tenant", "acme"], &env).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(!refused.status.success() && !failed.status.success());
    for run in [&failed, &refused, &listed] {
        for out in [&run.stdout, &run.stderr] {
            let text = String::from_utf8_lossy(out);
            assert!(
                !text.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']),
                "{text:?}"
            );
        }
    }
    assert!(stderr(&failed).contains("[2J"), "the rest is shown");
    let shown: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(
        shown["description"], rude,
        "listed data is escaped, not changed"
    );
}

/// A URL's user and password are refused, and never shown.
#[tokio::test]
async fn a_url_with_a_password_is_refused_and_never_shown() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://alice:pa55word@{}", closed.local_addr().unwrap());
    drop(closed);
    let home = tempfile::tempdir().unwrap();
    let login = login_at(home.path(), &url, "s").await;
    assert!(!login.status.success());
    let said = format!("{}{}", stdout(&login), stderr(&login));
    assert!(said.contains("user or password"), "{said}");
    assert!(!said.contains("pa55word"), "{said}");
}

/// An `expiresIn` past a year (here past what a timestamp holds) is an error, not a session
/// that never refreshes.
#[tokio::test]
async fn an_expires_in_out_of_range_is_refused() {
    let home = tempfile::tempdir().unwrap();
    for expires_in in [json!(i64::MAX), json!(u64::MAX), json!(0), json!(-5)] {
        let answer =
            json!({"accessToken": "a.b.c", "refreshToken": "r.s.t", "expiresIn": expires_in});
        let server = StandIn::json("200 OK", &answer).await;
        let login = login_at(home.path(), &server.url, "s").await;
        assert!(!login.status.success(), "{expires_in}");
        assert!(stderr(&login).contains("expiresIn"), "{}", stderr(&login));
    }
    assert!(!home.path().join(".config/m2m/session.json").exists());
}

/// `M2M_URL` with a query or a fragment would send the secret to another path: refused before
/// anything is sent.
#[tokio::test]
async fn a_url_with_a_query_or_fragment_is_refused() {
    let server = StandIn::json("200 OK", &issued()).await;
    let home = tempfile::tempdir().unwrap();
    for tail in ["/?x", "#y", "?"] {
        let login = login_at(home.path(), &format!("{}{tail}", server.url), "s3cr3t").await;
        assert!(!login.status.success(), "{tail}");
        assert!(stderr(&login).contains("query"), "{}", stderr(&login));
    }
    assert_eq!(server.received(), "");
}

/// An app trusting `issuer`'s workloads in namespace `ci`, JWTs of `ttl` seconds, and the
/// clientId of a tenant token with that policy.
async fn trusting(issuer: &m2m_tests::oidc_issuer::Issuer, ttl: i64) -> (TestApp, String) {
    let local = m2m_shared::domain::federation::LocalIssuers(vec![issuer.url.clone()]);
    let t = spawn_app_with(Backing::Embedded, move |s| {
        s.local_issuers = local;
        s.access_token_ttl_seconds = ttl;
    })
    .await;
    let vendor = t.vendor_token().await;
    let policy = json!([{"issuer": issuer.url, "audience": "m2m",
        "claims": {"kubernetes.io/namespace": "ci"}}]);
    let body = json!({"trustPolicies": policy});
    let (client_id, _) = t.tenant_token(&vendor, "acme", body).await;
    (t, client_id)
}

/// `m2m login --federated` with a file (a Kubernetes projected token): no secret anywhere, the
/// workload's token not cached, and `m2m token` renews from the file when the JWT nears its end.
#[tokio::test]
async fn a_pod_logs_in_with_its_projected_token() {
    let issuer = m2m_tests::oidc_issuer::Issuer::start().await;
    let (t, client_id) = trusting(&issuer, 30).await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("token");
    let pod = || {
        issuer
            .es256
            .sign(&issuer.kubernetes("m2m", "ci", "deployer"))
    };
    let first = pod();
    std::fs::write(&file, &first).unwrap();
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
    ];
    let args = ["login", "--federated", file.to_str().unwrap()];
    let login = m2m(home.path(), &args, &env).await;
    assert!(login.status.success(), "{}", stderr(&login));
    let cached = std::fs::read_to_string(home.path().join(".config/m2m/session.json")).unwrap();
    assert!(
        !cached.contains(&first),
        "the workload's token is not cached"
    );
    // 30 s left: renewed from the file, which the platform has rewritten.
    std::fs::write(&file, pod()).unwrap();
    let token = m2m(home.path(), &["token"], &[]).await;
    assert!(token.status.success(), "{}", stderr(&token));
    let claims = t
        .app
        .credentials(ISSUER)
        .verify_access_token(&stdout(&token))
        .unwrap();
    assert_eq!(claims.sub, client_id);
}

/// `m2m login --federated` with an environment variable (a CI step's); a token used before
/// gets the server's reason, a missing one and a secret beside it a clear refusal.
#[tokio::test]
async fn a_ci_job_logs_in_with_its_token_from_the_environment() {
    let issuer = m2m_tests::oidc_issuer::Issuer::start().await;
    let (t, client_id) = trusting(&issuer, 600).await;
    let home = tempfile::tempdir().unwrap();
    let from_env = issuer
        .es256
        .sign(&issuer.kubernetes("m2m", "ci", "deployer"));
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
        ("WORKLOAD_TOKEN", from_env.as_str()),
    ];
    let login = m2m(
        home.path(),
        &["login", "--federated", "WORKLOAD_TOKEN"],
        &env,
    )
    .await;
    assert!(login.status.success(), "{}", stderr(&login));
    let token = m2m(home.path(), &["token"], &[]).await;
    assert!(
        t.app
            .credentials(ISSUER)
            .verify_access_token(&stdout(&token))
            .is_ok()
    );
    let replayed = m2m(
        home.path(),
        &["login", "--federated", "WORKLOAD_TOKEN"],
        &env,
    )
    .await;
    assert!(!replayed.status.success());
    assert!(
        stderr(&replayed).contains("used before"),
        "{}",
        stderr(&replayed)
    );
    let nothing = m2m(home.path(), &["login", "--federated", "NOT_SET"], &env).await;
    assert!(
        stderr(&nothing).contains("no workload token"),
        "{}",
        stderr(&nothing)
    );
    let both = ["login", "--federated", "WORKLOAD_TOKEN", "--secret", "s"];
    let both = m2m(home.path(), &both, &env).await;
    assert!(
        !both.status.success(),
        "a secret and a workload token are one too many"
    );
}

/// The workload's token comes from the variable before a file of its name in the working folder
/// (a checkout's, which anyone with a branch could fill); a device is refused before it is read.
#[tokio::test]
async fn a_workload_token_is_the_variable_before_a_file_and_never_a_device() {
    let issuer = m2m_tests::oidc_issuer::Issuer::start().await;
    let (t, client_id) = trusting(&issuer, 600).await;
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("M2M_URL", t.base.as_str()),
        ("M2M_CLIENT_ID", client_id.as_str()),
    ];
    std::fs::write(home.path().join("FRESH_TOKEN"), "garbage").unwrap();
    let fresh = issuer
        .es256
        .sign(&issuer.kubernetes("m2m", "ci", "deployer"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_m2m"));
    command
        .args(["login", "--federated", "FRESH_TOKEN"])
        .env_clear()
        .env("HOME", home.path())
        .envs([("FRESH_TOKEN", fresh.as_str()), env[0], env[1]])
        .current_dir(home.path());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let device = m2m(home.path(), &["login", "--federated", "/dev/zero"], &env).await;
    assert!(
        stderr(&device).contains("not a regular file"),
        "{}",
        stderr(&device)
    );
}
