//! The `m2m-local` and `m2m-admin` binaries as a user runs them: start-up, settings, restarts,
//! crashes, the DynamoDB + KMS mode, and logs that never carry a credential.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{
    CONFIGURATIONS, DISCOVERY, EXCHANGE_V1, JWKS, REFRESH_V2, TENANT_TOKENS, USER_TOKENS,
    moto_endpoint, moto_resources,
};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use m2m_shared::domain::{ClientId, Secret, SecretKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running `m2m-local`; killed (like a crash) when dropped.
pub(crate) struct Server {
    child: Child,
    pub base: String,
    /// Everything printed to stdout before the server said it was listening.
    pub banner: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(envs: &[(&str, String)]) -> Server {
        // An ephemeral port unless `envs` names one.
        let mut all = vec![("M2M_LISTEN", "127.0.0.1:0".to_owned())];
        all.extend_from_slice(envs);
        let mut child = command(crate::support::binary("m2m-local"), &all)
            .spawn()
            .unwrap();
        let stderr = lines(child.stderr.take().unwrap());
        let rx = lines(child.stdout.take().unwrap());
        // Owned by `Server` from here, so a failed start is killed and reaped on drop.
        let mut server = Server {
            child,
            base: String::new(),
            banner: Vec::new(),
            stderr,
        };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    panic!(
                        "m2m-local did not start; stdout so far: {:?}",
                        server.banner
                    )
                });
            if let Some(address) = line.strip_prefix("m2m-auth listening on ") {
                server.base = address.to_owned();
                return server;
            }
            server.banner.push(line);
        }
    }

    /// Sends SIGTERM, as a container's stop or a service manager does.
    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to end by itself (10 s at most); its exit status and its log.
    fn stopped(mut self) -> (std::process::ExitStatus, String) {
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("m2m-local did not stop within 10 s:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Creates the tenant `acme`.
    async fn acme(&self, vendor: &str) {
        let path = "/identity/resources/tenants/v1/acme";
        let auth = [("x-access-token", vendor)];
        let (status, body) = self.call("PUT", path, &auth, Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Creates a tenant token in tenant `acme` (creating it) and returns the create response.
    pub async fn tenant_token(&self, vendor: &str) -> Value {
        self.acme(vendor).await;
        let headers = [("x-access-token", vendor), ("frontegg-tenant-id", "acme")];
        let (status, created) = self
            .call("POST", TENANT_TOKENS, &headers, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    pub async fn vendor_token(&self, client_id: &str, secret: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/auth/vendor",
                &[],
                Some(json!({"clientId": client_id, "secret": secret})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// A binary with only PATH, a cheap bcrypt cost and `envs` in its environment, output piped.
fn command(binary: &str, envs: &[(&str, String)]) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("M2M_BCRYPT_COST", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    command
}

/// The lines `reader` yields, as they come.
fn lines(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Runs a binary to completion and returns (success, stdout, stderr).
pub(crate) fn run(binary: &str, args: &[&str], envs: &[(&str, String)]) -> (bool, String, String) {
    let output = command(binary, envs).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The token record as DynamoDB holds it.
async fn stored_token(table: &str, client_id: &str) -> HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(&crate::support::aws_config().await)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("TOKEN#{client_id}")))
        .key("sk", AttributeValue::S("TOKEN".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the token is stored in DynamoDB")
}

pub(crate) fn banner_value(banner: &[String], name: &str) -> Option<String> {
    banner.iter().find_map(|line| {
        line.trim()
            .strip_prefix(&format!("{name}="))
            .map(str::to_owned)
    })
}

/// The environment naming a moto table and key, as a binary running on AWS reads it.
pub(crate) fn aws_env(table: &str, key_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("M2M_TABLE", table.to_owned()),
        ("M2M_KMS_KEY_ID", key_id.to_owned()),
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

#[tokio::test]
async fn first_start_prints_a_vendor_credential_once_and_tokens_survive_restart_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = [("M2M_DATA_DIR", dir.path().display().to_string())];
    let server = Server::start(&data);
    let client_id =
        banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").expect("client id printed");
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").expect("secret printed");
    let vendor = server.vendor_token(&client_id, &secret).await;
    let created = server.tenant_token(&vendor).await;
    let (_, jwks) = server.call("GET", JWKS, &[], None).await;
    // SIGKILL right after the 201: the write was committed, so nothing may be lost.
    drop(server);

    let server = Server::start(&data);
    assert!(
        banner_value(&server.banner, "M2M_VENDOR_SECRET").is_none(),
        "the vendor secret is printed only on first start"
    );
    let (_, jwks_again) = server.call("GET", JWKS, &[], None).await;
    assert_eq!(jwks, jwks_again, "the signing key survives a restart");
    let credentials = json!({"clientId": created["clientId"], "secret": created["secret"]});
    let (status, _) = server
        .call("POST", EXCHANGE_V1, &[], Some(credentials))
        .await;
    assert_eq!(status, StatusCode::OK, "the token survives a crash");
    server.vendor_token(&client_id, &secret).await;
}

#[tokio::test]
async fn vendor_credentials_from_the_environment_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let client_id = ClientId::generate().to_string();
    let secret = Secret::generate(SecretKind::Vendor).expose().to_owned();
    let server = Server::start(&[
        ("M2M_DATA_DIR", dir.path().display().to_string()),
        ("M2M_VENDOR_CLIENT_ID", client_id.clone()),
        ("M2M_VENDOR_SECRET", secret.clone()),
    ]);
    assert!(banner_value(&server.banner, "M2M_VENDOR_SECRET").is_none());
    server.vendor_token(&client_id, &secret).await;
}

/// OpenID clients accept a provider only when discovery's issuer is the URL they found it at.
#[tokio::test]
async fn the_local_server_issues_as_its_own_url_unless_a_public_url_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = ("M2M_DATA_DIR", dir.path().display().to_string());
    let server = Server::start(std::slice::from_ref(&data));
    let (_, discovery) = server.call("GET", DISCOVERY, &[], None).await;
    assert_eq!(discovery["issuer"], server.base.as_str());
    let forged = [("host", "evil.example"), ("x-forwarded-proto", "https")];
    let (_, told) = server.call("GET", DISCOVERY, &forged, None).await;
    assert_eq!(told, discovery, "Host is not the server's URL");
    let client_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let vendor = server.vendor_token(&client_id, &secret).await;
    let created = server.tenant_token(&vendor).await;
    let credentials = json!({"clientId": created["clientId"], "secret": created["secret"]});
    let (_, issued) = server
        .call("POST", EXCHANGE_V1, &[], Some(credentials))
        .await;
    let jwt = issued["accessToken"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload);
    let claims: Value = serde_json::from_slice(&payload.unwrap()).unwrap();
    assert_eq!(claims["iss"], server.base.as_str());
    drop(server);

    let public = ("M2M_PUBLIC_URL", "https://auth.example.com/".to_owned());
    let server = Server::start(&[data, public]);
    let (_, discovery) = server.call("GET", DISCOVERY, &[], None).await;
    assert_eq!(discovery["issuer"], "https://auth.example.com");
}

#[test]
fn a_missing_or_malformed_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = ("M2M_DATA_DIR", dir.path().display().to_string());
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("M2M_BCRYPT_COST", "ten")], "M2M_BCRYPT_COST"),
        (&[("M2M_LISTEN", "everywhere")], "M2M_LISTEN"),
        (&[("M2M_METRICS_LISTEN", "9464")], "M2M_METRICS_LISTEN"),
        (&[("M2M_TABLE", "tokens")], "M2M_KMS_KEY_ID"),
        (
            &[(
                "M2M_VENDOR_CLIENT_ID",
                "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
            )],
            "M2M_VENDOR_SECRET",
        ),
        (
            &[
                (
                    "M2M_VENDOR_CLIENT_ID",
                    "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
                ),
                ("M2M_VENDOR_SECRET", "hunter2"),
            ],
            "M2M_VENDOR_SECRET",
        ),
    ];
    for (vars, name) in cases {
        let mut envs: Vec<(&str, String)> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        envs.push(data.clone());
        let (ok, _, stderr) = run(crate::support::binary("m2m-local"), &[], &envs);
        assert!(!ok, "{vars:?} must stop start-up");
        assert!(
            stderr.contains(name),
            "{vars:?}: the message names {name}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "the message does not echo a secret"
        );
    }
}

#[tokio::test]
async fn with_table_and_key_set_the_same_binary_uses_dynamodb_and_kms() {
    let (table, key_id) = moto_resources().await;
    let env = aws_env(&table, &key_id);

    // The documented way to make a vendor credential in a deployed table.
    let (ok, out, err) = run(
        crate::support::binary("m2m-admin"),
        &["create-vendor"],
        &env,
    );
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap()
    };
    let (client_id, secret) = (field("clientId:"), field("secret:"));

    let server = Server::start(&env);
    assert!(
        banner_value(&server.banner, "M2M_VENDOR_SECRET").is_none(),
        "the table has a vendor already"
    );
    let vendor = server.vendor_token(&client_id, &secret).await;
    let created = server.tenant_token(&vendor).await;

    let item = stored_token(&table, created["clientId"].as_str().unwrap()).await;
    let hash = item["secretHash"].as_s().unwrap();
    assert!(hash.starts_with("$2"), "stored as a bcrypt hash");
    assert!(!item.values().any(|v| {
        v.as_s()
            .is_ok_and(|s| s == created["secret"].as_str().unwrap())
    }));

    let (_, pem) = server
        .call("GET", CONFIGURATIONS, &[("x-access-token", &vendor)], None)
        .await;
    let kms_key = aws_sdk_kms::Client::new(&crate::support::aws_config().await)
        .get_public_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let pem_body: String = pem["publicKey"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(pem_body)
            .unwrap(),
        kms_key.public_key.unwrap().into_inner(),
        "the published key is the KMS key"
    );
}

/// Creates a personal and a tenant token, exchanges and refreshes each, and collects every
/// credential handled into `credentials`; returns the two clientIds.
pub(crate) async fn exchange_and_refresh_both_kinds(
    server: &Server,
    vendor: &str,
    credentials: &mut Vec<String>,
) -> Vec<String> {
    let user_headers = [
        ("x-access-token", vendor),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    server.acme(vendor).await;
    let member =
        json!({"email": "alice@acme.test", "tenants": [{"tenantId": "acme", "roleIds": []}]});
    let alice = "/identity/resources/users/v1/alice";
    let (status, _) = server
        .call("PUT", alice, &user_headers[..1], Some(member))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut client_ids = Vec::new();
    for (path, headers) in [
        (USER_TOKENS, &user_headers[..]),
        (TENANT_TOKENS, &user_headers[..2]),
    ] {
        let body = json!({"description": "ci"});
        let (status, created) = server.call("POST", path, headers, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        credentials.push(created["secret"].as_str().unwrap().to_owned());
        let body = json!({"clientId": created["clientId"], "secret": created["secret"]});
        let (status, issued) = server.call("POST", EXCHANGE_V1, &[], Some(body)).await;
        assert_eq!(status, StatusCode::OK);
        credentials.push(issued["accessToken"].as_str().unwrap().to_owned());
        let refresh = issued["refreshToken"].as_str().unwrap().to_owned();
        let body = json!({"refreshToken": refresh});
        let (status, renewed) = server.call("POST", REFRESH_V2, &[], Some(body)).await;
        assert_eq!(status, StatusCode::OK);
        credentials.push(refresh);
        credentials.push(renewed["access_token"].as_str().unwrap().to_owned());
        credentials.push(renewed["refresh_token"].as_str().unwrap().to_owned());
        client_ids.push(created["clientId"].as_str().unwrap().to_owned());
    }
    client_ids
}

/// The ids of the requests `logs` says were answered (each a UUID, one a request).
fn request_ids(logs: &str) -> std::collections::BTreeSet<String> {
    let answered: Vec<&str> = (logs.lines())
        .filter(|l| l.contains(r#""message":"finished processing request""#))
        .collect();
    let ids: std::collections::BTreeSet<String> = (answered.iter())
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap();
            line["span"]["request_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), answered.len(), "one id a request: {ids:?}");
    assert!(
        ids.iter().all(|id| uuid::Uuid::try_parse(id).is_ok()),
        "{ids:?}"
    );
    ids
}

/// Runs a full flow against the real binary with every log level on, then looks for every
/// credential the flow handled (secrets, bcrypt hashes, vendor and access JWTs, refresh tokens).
#[tokio::test]
async fn no_secret_hash_or_token_reaches_a_log_line() {
    let (table, key_id) = moto_resources().await;
    let mut env = aws_env(&table, &key_id);
    let vendor_id = ClientId::generate().to_string();
    let vendor_secret = Secret::generate(SecretKind::Vendor).expose().to_owned();
    env.push(("M2M_VENDOR_CLIENT_ID", vendor_id.clone()));
    env.push(("M2M_VENDOR_SECRET", vendor_secret.clone()));
    env.push(("RUST_LOG", "trace".into()));
    let server = Server::start(&env);

    let mut credentials = vec![vendor_secret.clone()];
    let vendor = server.vendor_token(&vendor_id, &vendor_secret).await;
    credentials.push(vendor.clone());
    let client_ids = exchange_and_refresh_both_kinds(&server, &vendor, &mut credentials).await;
    // A failed attempt must not log what was tried either.
    let wrong = Secret::generate(SecretKind::TenantToken)
        .expose()
        .to_owned();
    let body = json!({"clientId": client_ids[1], "secret": wrong});
    let (status, _) = server.call("POST", EXCHANGE_V1, &[], Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Nor a credential a client put in a path by mistake (a route's or none).
    for path in [format!("{EXCHANGE_V1}/{wrong}"), format!("/nope/{vendor}")] {
        let answer = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert!(answer.status().is_client_error(), "{path}");
    }
    credentials.push(wrong);
    for client_id in &client_ids {
        let item = stored_token(&table, client_id).await;
        credentials.push(item["secretHash"].as_s().unwrap().clone());
    }

    let logs = server.logs();
    // Each request logged, its lines naming it by an id of its own, as its answer's
    // `x-request-id` does.
    let ids = request_ids(&logs);
    assert_eq!(ids.len(), 12, "every request, each its own id: {logs}");
    for credential in &credentials {
        // JWTs are checked by their signature part, which no other text contains.
        let needle = match credential.starts_with("eyJ") {
            true => credential.rsplit('.').next().unwrap(),
            false => credential.as_str(),
        };
        assert!(
            !logs.contains(needle),
            "a credential reached the logs: {needle}"
        );
        // A bcrypt hash's salt and digest, even if its `$` were escaped.
        if credential.starts_with("$2") {
            assert!(!logs.contains(&credential[7..]), "a hash reached the logs");
        }
    }
}

/// The docs' text between `<!-- {name}:start -->` and `<!-- {name}:end -->` (in the README or
/// a page of the book), without the code fence.
fn readme_block(name: &str) -> String {
    let docs = [
        "README.md",
        "docs/src/frontegg.md",
        "docs/src/operations.md",
    ]
    .map(|doc| std::fs::read_to_string(format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap())
    .join("\n");
    let block = docs
        .split(&format!("<!-- {name}:start -->"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("<!-- {name}:end -->")).next())
        .unwrap_or_else(|| panic!("the docs mark their {name} block"));
    let block = block.trim();
    let body = block.split_once('\n').map_or("", |(_fence, body)| body);
    body.trim_end_matches("```").to_owned()
}

/// Runs one of the README's bash blocks, as written, against a fresh server with the vendor
/// credential it printed exported; returns what the block printed.
fn run_readme_block(name: &str) -> String {
    run_readme_block_with(name, |_| Vec::new())
}

/// As [`run_readme_block`], with the variables `more` makes from the vendor's environment
/// (`M2M_URL` and the credential), and `m2m-admin` on the `PATH`.
fn run_readme_block_with(
    name: &str,
    more: impl FnOnce(&[(&str, String)]) -> Vec<(&'static str, String)>,
) -> String {
    let script = readme_block(name);
    assert!(
        script.contains("http://127.0.0.1:8080"),
        "{name} names the local server"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&[("M2M_DATA_DIR", dir.path().display().to_string())]);
    let client_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let script = script.replace("http://127.0.0.1:8080", &server.base);
    let vendor = [
        ("M2M_URL", server.base.clone()),
        ("M2M_VENDOR_CLIENT_ID", client_id),
        ("M2M_VENDOR_SECRET", secret),
    ];
    let binaries = std::path::Path::new(crate::support::binary("m2m-admin")).parent();
    let path = format!(
        "{}:{}",
        binaries.unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .envs(more(&vendor))
        .envs(vendor)
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_readme_walkthrough_works_as_written() {
    let stdout = tokio::task::spawn_blocking(|| run_readme_block("walkthrough"))
        .await
        .unwrap();

    for expected in [
        r#""type": "tenantApiToken""#,
        r#""roles": ["#,
        r#""admin""#,
        "deploy.write",
        "alice@acme.test",
        "personal token after deleting alice: 401",
        r#""type": "userApiToken""#,
        r#""userId": "alice""#,
        r#""alg": "RS256""#,
        "-----BEGIN PUBLIC KEY-----",
    ] {
        assert!(
            stdout.contains(expected),
            "the walk-through shows {expected}:\n{stdout}"
        );
    }
}

/// The README's "Compatibility with Frontegg" calls print what the README says they print.
#[tokio::test]
async fn the_readmes_frontegg_calls_print_what_it_says() {
    let stdout = tokio::task::spawn_blocking(|| run_readme_block("frontegg"))
        .await
        .unwrap();
    assert_eq!(stdout.trim(), readme_block("frontegg-output").trim());
}

/// While `m2m-local` runs (holding its store), `m2m-admin vendors` manages the vendor's
/// credentials through it: creates a named one, lists it with its last use, rotates it without
/// grace and revokes it with its own secret; the last credential is kept. `create-vendor`, which
/// needs the store, says what to do instead. Every failure is told in words.
#[tokio::test]
async fn m2m_admin_manages_vendor_credentials_through_the_running_server() {
    let admin = crate::support::binary("m2m-admin");
    let dir = tempfile::tempdir().unwrap();
    let data = ("M2M_DATA_DIR", dir.path().display().to_string());
    let server = Server::start(std::slice::from_ref(&data));
    let first_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let first_secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let as_vendor = |id: &str, secret: &str| {
        vec![
            ("M2M_URL", server.base.clone()),
            ("M2M_VENDOR_CLIENT_ID", id.to_owned()),
            ("M2M_VENDOR_SECRET", secret.to_owned()),
        ]
    };
    let first = as_vendor(&first_id, &first_secret);

    let (ok, _, err) = run(admin, &["create-vendor"], std::slice::from_ref(&data));
    assert!(!ok && err.contains("m2m-admin vendors create"), "{err}");

    let (ok, out, err) = run(admin, &["vendors", "create", "ci deploys"], &first);
    assert!(ok, "{out}{err}");
    let printed: Vec<String> = out.lines().map(str::to_owned).collect();
    let ci_id = banner_value(&printed, "M2M_VENDOR_CLIENT_ID").expect("clientId printed");
    let ci_secret = banner_value(&printed, "M2M_VENDOR_SECRET").expect("secret printed");
    server.vendor_token(&ci_id, &ci_secret).await;

    // The secret may come from a file (or /dev/stdin) instead of the environment.
    let secret_file = dir.path().join("vendor-secret");
    std::fs::write(&secret_file, format!("{first_secret}\n")).unwrap();
    let from_file = vec![
        ("M2M_URL", server.base.clone()),
        ("M2M_VENDOR_CLIENT_ID", first_id.clone()),
        ("M2M_VENDOR_SECRET_FILE", secret_file.display().to_string()),
    ];
    let (ok, out, err) = run(admin, &["vendors", "list"], &from_file);
    assert!(ok, "{err}");
    let ci_line = out.lines().find(|l| l.starts_with(&ci_id)).expect(&out);
    let fields: Vec<&str> = ci_line.split_whitespace().collect();
    assert_ne!(fields[2], "-", "last used: {ci_line}");
    assert!(ci_line.ends_with("ci deploys"), "{ci_line}");
    assert_eq!(
        out.lines().count(),
        3,
        "a header and two credentials:\n{out}"
    );

    let rotate = ["vendors", "rotate", ci_id.as_str(), "--grace-minutes", "0"];
    let (ok, out, err) = run(admin, &rotate, &first);
    assert!(ok && out.contains("stopped now"), "{out}{err}");
    let printed: Vec<String> = out.lines().map(str::to_owned).collect();
    let rotated = banner_value(&printed, "M2M_VENDOR_SECRET").unwrap();
    let (ok, _, err) = run(admin, &["vendors", "list"], &as_vendor(&ci_id, &ci_secret));
    assert!(
        !ok && err.contains("refused M2M_VENDOR_CLIENT_ID"),
        "the old secret: {err}"
    );

    let revoke = ["vendors", "revoke", ci_id.as_str()];
    let (ok, out, err) = run(admin, &revoke, &as_vendor(&ci_id, &rotated));
    assert!(ok && out.contains("Revoked"), "{out}{err}");
    let (ok, _, _) = run(admin, &["vendors", "list"], &as_vendor(&ci_id, &rotated));
    assert!(!ok, "revoked");
    let (ok, _, err) = run(admin, &["vendors", "revoke", &first_id], &first);
    assert!(!ok && err.contains("409") && err.contains("last"), "{err}");
}

/// One environment variable of a command.
type Env = (&'static str, String);

/// `m2m-admin vendors` says what went wrong: a bad clientId, a missing credential, no server,
/// an unknown command.
#[test]
fn m2m_admin_vendors_explains_each_failure() {
    let admin = crate::support::binary("m2m-admin");
    let id = ClientId::generate().to_string();
    let secret = Secret::generate(SecretKind::Vendor).expose().to_owned();
    let nowhere = [
        ("M2M_URL", "http://127.0.0.1:9".to_owned()),
        ("M2M_VENDOR_CLIENT_ID", id),
        ("M2M_VENDOR_SECRET", secret),
    ];
    let cases: [(&[&str], &[Env], &str); 4] = [
        (
            &["vendors", "rotate", "nobody"],
            &nowhere,
            "\"nobody\" is not a clientId",
        ),
        (&["vendors", "list"], &[], "M2M_VENDOR_CLIENT_ID is not set"),
        (
            &["vendors", "list"],
            &nowhere,
            "cannot reach http://127.0.0.1:9",
        ),
        (&["vendors", "frobnicate"], &nowhere, "vendors create NAME"),
    ];
    for (args, env, told) in cases {
        let (ok, _, err) = run(admin, args, env);
        assert!(!ok && err.contains(told), "{args:?}: {err}");
    }
}

/// The README's runbook for a leaked vendor secret, run as written while the server runs: a
/// new credential made, both listed, the leaked one revoked.
#[tokio::test]
async fn the_readmes_vendor_leak_runbook_works_as_written() {
    let admin = crate::support::binary("m2m-admin");
    let stdout = tokio::task::spawn_blocking(move || {
        run_readme_block_with("vendor-leak", |vendor| {
            let (ok, out, err) = run(admin, &["vendors", "create", "leaked"], vendor);
            assert!(ok, "{err}");
            let printed: Vec<String> = out.lines().map(str::to_owned).collect();
            let leaked = banner_value(&printed, "M2M_VENDOR_CLIENT_ID").unwrap();
            vec![("LEAKED", leaked)]
        })
    })
    .await
    .unwrap();
    assert!(stdout.contains("after the leak"), "{stdout}");
    assert!(
        stdout.contains("leaked"),
        "listed before the revocation: {stdout}"
    );
    assert!(stdout.contains("Revoked"), "{stdout}");
}

/// The ids of the events in a JSON-lines audit stream, each line parsed, in the file's order.
fn streamed(file: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A server's variables for a data folder and an audit stream file in `dir`; the file's path.
fn streaming_into(dir: &std::path::Path) -> ([(&'static str, String); 2], std::path::PathBuf) {
    let file = dir.join("audit.jsonl");
    let envs = [
        ("M2M_DATA_DIR", dir.join("data").display().to_string()),
        ("M2M_AUDIT_STREAM_FILE", file.display().to_string()),
    ];
    (envs, file)
}

/// With `M2M_AUDIT_STREAM_FILE`, every event the trail records reaches that file, one JSON line
/// each, as `GET /audits` shows it, in the order they were committed; a crash right after a
/// change loses none of its events (the next start streams what the last one had not).
#[tokio::test]
async fn audit_events_stream_to_a_json_lines_file_and_a_crash_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let (envs, file) = streaming_into(dir.path());
    let server = Server::start(&envs);
    let client_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let vendor = server.vendor_token(&client_id, &secret).await;
    let created = server.tenant_token(&vendor).await;
    let path = format!("{TENANT_TOKENS}/{}", created["clientId"].as_str().unwrap());
    let auth = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let (status, _) = server.call("DELETE", &path, &auth, None).await;
    assert_eq!(status, StatusCode::OK);
    drop(server); // SIGKILL

    let server = Server::start(&envs);
    let vendor = server.vendor_token(&client_id, &secret).await;
    let auth = [("x-access-token", vendor.as_str())];
    let (status, trail) = server
        .call("GET", "/audits?sortDirection=asc&count=1000", &auth, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    let trail = trail["data"].as_array().unwrap().clone();
    let actions: Vec<&str> = trail.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "apiToken.created",
        "apiToken.deleted",
        "vendorCredential.login",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = streamed(&file);
        if lines.len() >= trail.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A crash between a line and its leaving the queue writes it twice: ids tell.
    let mut seen = std::collections::HashSet::new();
    lines.retain(|line| seen.insert(line["id"].clone()));
    assert_eq!(
        lines[..trail.len()],
        trail[..],
        "the stream holds every event, as read, in order"
    );
}

/// Sends an exchange of `body` with half its body, has the server stopped (SIGTERM), then
/// sends the rest: the raw answer.
async fn exchanged_across_a_stop(server: &Server, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (first, rest) = body.split_at(body.len() / 2);
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {EXCHANGE_V1} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// On SIGTERM the server takes no new request, finishes the one under way (here, its body still
/// arriving), writes the minute's usage counts it held in memory, streams them, closes the
/// store cleanly and exits 0; the next start finds the store closed and the counts in the
/// trail. A kill (the contrast) leaves the store to be checked on the next start.
#[tokio::test]
async fn sigterm_finishes_requests_keeps_counts_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (data, stream_file) = streaming_into(dir.path());
    let server = Server::start(&data);
    let vendor_id = banner_value(&server.banner, "M2M_VENDOR_CLIENT_ID").unwrap();
    let vendor_secret = banner_value(&server.banner, "M2M_VENDOR_SECRET").unwrap();
    let vendor = server.vendor_token(&vendor_id, &vendor_secret).await;
    let created = server.tenant_token(&vendor).await;
    let client_id = created["clientId"].as_str().unwrap().to_owned();
    let credentials = json!({"clientId": client_id, "secret": created["secret"]});
    let (status, _) = server
        .call("POST", EXCHANGE_V1, &[], Some(credentials.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);

    // A request under way: its headers and half its body sent, then the stop.
    let answer = exchanged_across_a_stop(&server, &credentials.to_string()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("accessToken"), "{answer}");
    let (status, log) = server.stopped();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("stopped"), "{log}");
    let used = streamed(&stream_file);
    let used = used.iter().find(|event| event["action"] == "apiToken.used");
    assert_eq!(
        used.map(|e| &e["issued"]),
        Some(&json!(2)),
        "streamed before the exit"
    );

    let server = Server::start(&data);
    assert!(
        !server.logs().contains("not closed cleanly"),
        "a stop closes the store"
    );
    let vendor = server.vendor_token(&vendor_id, &vendor_secret).await;
    let path = format!("/audits?filter={client_id}");
    let auth = [("x-access-token", vendor.as_str())];
    let (status, used) = server.call("GET", &path, &auth, None).await;
    assert_eq!(status, StatusCode::OK, "{used}");
    let issued: Vec<&Value> = (used["data"].as_array().unwrap().iter())
        .filter(|event| event["action"] == "apiToken.used")
        .map(|event| &event["issued"])
        .collect();
    assert_eq!(issued, [&json!(2)], "both JWTs counted: {used}");

    drop(server); // SIGKILL
    let server = Server::start(&data);
    assert!(
        server.logs().contains("not closed cleanly"),
        "a kill is seen"
    );
}
