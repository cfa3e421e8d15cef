//! The test harness: `spawn_app` starts the whole API in-process on 127.0.0.1 over a real
//! listener, on the embedded store or on DynamoDB + KMS in moto, and hands back a typed client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod dynamo_json;
pub mod fault_proxy;
pub mod gateway;
pub mod oidc_issuer;
pub mod runtime_api;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use m2m_shared::App;
use m2m_shared::adapters::{DynamoStore, EmbeddedStore, LocalKeySigner, SystemClock};
pub use m2m_shared::config::{Backend, Settings};
pub use m2m_shared::domain::SecretFormat;
use m2m_shared::domain::Timestamp;
use m2m_shared::ports::{Clock, Signer, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Where the app keeps its tokens in a test.
#[derive(Clone, Copy, Debug)]
pub enum Backing {
    Embedded,
    /// DynamoDB and KMS served by moto at `M2M_TEST_AWS_ENDPOINT`.
    Moto,
}

/// The system clock, movable forward so tests can let tokens expire.
#[derive(Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn advance_seconds(&self, seconds: i64) {
        self.offset_ms.fetch_add(seconds * 1000, Ordering::SeqCst);
    }

    /// Moves to the start of the next minute, so that a minute-long window is all ahead.
    pub fn to_next_minute(&self) {
        let into_minute = self.now().millis().rem_euclid(60_000);
        self.offset_ms
            .fetch_add(60_000 - into_minute, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now().millis();
        Timestamp::from_millis(now + self.offset_ms.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub app: Arc<App>,
    /// The app's store, for tests that check what it holds.
    pub store: Arc<dyn Store>,
    /// The DynamoDB table, on moto.
    pub table: Option<String>,
    pub clock: Arc<TestClock>,
    pub vendor_client_id: String,
    pub vendor_secret: String,
    /// Keeps the embedded store's folder until the test ends.
    _data_dir: Option<tempfile::TempDir>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The JWTs' `iss` in tests (`M2M_ISSUER`).
pub const ISSUER: &str = "https://auth.test";

pub fn test_settings(backend: Backend) -> Settings {
    Settings {
        backend,
        bcrypt_cost: 4,
        secret_format: SecretFormat::Scannable,
        issuer: Some(ISSUER.into()),
        audience: "test-api".into(),
        application_id: "test-app".into(),
        access_token_ttl_seconds: 600,
        vendor_token_ttl_seconds: 3600,
        refresh_token_ttl_seconds: 86_400,
        // Moto serves one request at a time; under the suite's load a request may wait.
        request_budget_seconds: 120,
        token_rate_limit_per_minute: 600,
        audit_retention_days: 365,
        trust_forwarded_for: false,
        public_url: None,
        portal_frame_ancestors: "'none'".into(),
        local_issuers: m2m_shared::domain::federation::LocalIssuers::default(),
    }
}

/// The moto endpoint the test script started; these tests cannot run without it.
/// An audit event of no request, now, for store calls made directly.
pub fn audit_event() -> m2m_shared::domain::audit::AuditEvent {
    use m2m_shared::domain::audit::{Action, Attribution, AuditEvent, Severity, Target};
    let action = Action {
        name: "test.changed",
        severity: Severity::Info,
        target: Target::new("test", "t"),
        tenant_id: None,
    };
    let now = m2m_shared::domain::Timestamp::from_millis(
        i64::try_from(std::time::UNIX_EPOCH.elapsed().unwrap().as_millis()).unwrap(),
    );
    AuditEvent::of(action, &Attribution::SYSTEM, now, 365)
}

pub fn moto_endpoint() -> String {
    std::env::var("M2M_TEST_AWS_ENDPOINT").expect(
        "M2M_TEST_AWS_ENDPOINT is not set: run the suite with scripts/test.sh, which starts moto",
    )
}

/// The SDK configuration for moto. Its operations take the time they need: moto serves one
/// request at a time, so under the suite's load a call may wait longer than the service's
/// budgets allow. The fault tests use those budgets ([`aws_config_at`]).
pub async fn aws_config() -> aws_config::SdkConfig {
    patient_config_at(&moto_endpoint()).await
}

/// The SDK configuration sending to `endpoint`, with no operation or attempt timeout.
async fn patient_config_at(endpoint: &str) -> aws_config::SdkConfig {
    let patient = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build();
    aws_loader(endpoint).timeout_config(patient).load().await
}

/// The service's own SDK configuration (its timeouts and retries), sending to `endpoint`.
pub async fn aws_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_loader(endpoint).load().await
}

fn aws_loader(endpoint: &str) -> aws_config::ConfigLoader {
    m2m_shared::adapters::aws::sdk_config_loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{:x}", std::process::id())
}

/// A table with the template's key schema and TTL attribute, and an RSA_2048 signing key.
pub async fn moto_resources() -> (String, String) {
    let config = aws_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("m2m-test");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let index = |name: &str, projection: ProjectionType| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash))
            .key_schema(key(&format!("{name}sk"), KeyType::Range))
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .unwrap()
    };
    let mut create = dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(index("gsi1", ProjectionType::All))
        .global_secondary_indexes(index("gsi2", ProjectionType::All))
        .global_secondary_indexes(index("gsi3", ProjectionType::KeysOnly));
    let names = ["gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"];
    for name in ["pk", "sk"].into_iter().chain(names) {
        create = create.attribute_definitions(attribute(name));
    }
    create.send().await.expect("create table in moto");
    let kms = aws_sdk_kms::Client::new(&config);
    let key = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create KMS key in moto");
    let key_id = key.key_metadata.unwrap().key_id;
    (table, key_id)
}

pub async fn build_app(
    backing: Backing,
    clock: Arc<TestClock>,
) -> (Arc<App>, Option<tempfile::TempDir>) {
    let built = build_app_with(backing, clock, |_| {}).await;
    (built.app, built.dir)
}

/// An app and, for tests that look behind the API, its store.
pub struct Built {
    pub app: Arc<App>,
    pub store: Arc<dyn Store>,
    /// The DynamoDB table, on moto.
    pub table: Option<String>,
    pub dir: Option<tempfile::TempDir>,
}

pub async fn build_app_with(
    backing: Backing,
    clock: Arc<TestClock>,
    adjust: impl FnOnce(&mut Settings),
) -> Built {
    build_app_wrapping(backing, clock, adjust, |store| store).await
}

/// As [`build_app_with`], with the store the app uses made by `wrap` from the backing's.
pub async fn build_app_wrapping(
    backing: Backing,
    clock: Arc<TestClock>,
    adjust: impl FnOnce(&mut Settings),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> Built {
    let (store, signer, backend, dir): (Arc<dyn Store>, Arc<dyn Signer>, Backend, _) = match backing
    {
        Backing::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(&dir.path().join("tokens.redb")).unwrap();
            let signer =
                LocalKeySigner::load_or_create(&dir.path().join("signing-key.pem")).unwrap();
            let backend = Backend::Embedded {
                data_dir: dir.path().to_owned(),
                audit_stream: None,
            };
            (Arc::new(store), Arc::new(signer), backend, Some(dir))
        }
        Backing::Moto => {
            let config = aws_config().await;
            let (store, signer, backend) = moto_parts(&config, &config, Signing::Kms).await;
            (store, signer, backend, None)
        }
    };
    compose(wrap(store), signer, backend, dir, clock, adjust)
}

/// Who signs on AWS: KMS itself, or a key wrapped under a symmetric KMS key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Kms,
    WrappedKey,
}

/// A symmetric ENCRYPT_DECRYPT key in moto, as the template's wrapping key.
pub async fn moto_wrapping_key() -> String {
    let kms = aws_sdk_kms::Client::new(&aws_config().await);
    let key = kms
        .create_key()
        .send()
        .await
        .expect("create KMS key in moto");
    key.key_metadata.unwrap().key_id
}

/// A store and a signer on fresh moto resources, reached as `dynamodb` and `kms` configure.
async fn moto_parts(
    dynamodb: &aws_config::SdkConfig,
    kms: &aws_config::SdkConfig,
    signing: Signing,
) -> (Arc<dyn Store>, Arc<dyn Signer>, Backend) {
    let (table, kms_key_id) = moto_resources().await;
    let wrapping_key_id = match signing {
        Signing::Kms => None,
        Signing::WrappedKey => Some(moto_wrapping_key().await),
    };
    let backend = Backend::Aws {
        table,
        kms_key_id,
        wrapping_key_id,
        previous_kms_key_id: None,
    };
    parts_on(dynamodb, kms, backend).await
}

/// The store and signer of `backend` (`Backend::Aws`), as `App::build` makes them.
pub async fn parts_on(
    dynamodb: &aws_config::SdkConfig,
    kms: &aws_config::SdkConfig,
    backend: Backend,
) -> (Arc<dyn Store>, Arc<dyn Signer>, Backend) {
    let Backend::Aws { table, .. } = &backend else {
        panic!("AWS parts need an AWS backend");
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(dynamodb);
    let kms = aws_sdk_kms::Client::new(kms);
    let signer = m2m_shared::adapters::aws::signer(&dynamodb, &kms, &backend);
    let signer: Arc<dyn Signer> = signer.await.unwrap().into();
    let store = DynamoStore::new(dynamodb, table);
    (Arc::new(store), signer, backend)
}

/// An app on existing moto resources, as a Lambda cold start on them would build it.
pub async fn app_on(backend: Backend) -> Arc<App> {
    let config = aws_config().await;
    let (store, signer, backend) = parts_on(&config, &config, backend).await;
    let clock = Arc::new(TestClock::default());
    compose(store, signer, backend, None, clock, |_| {}).app
}

fn compose(
    store: Arc<dyn Store>,
    signer: Arc<dyn Signer>,
    backend: Backend,
    dir: Option<tempfile::TempDir>,
    clock: Arc<TestClock>,
    adjust: impl FnOnce(&mut Settings),
) -> Built {
    let table = match &backend {
        Backend::Aws { table, .. } => Some(table.clone()),
        Backend::Embedded { .. } => None,
    };
    let mut settings = test_settings(backend);
    adjust(&mut settings);
    let app = App::with_parts(settings, Arc::clone(&store), signer, clock);
    Built {
        app: Arc::new(app),
        store,
        table,
        dir,
    }
}

/// The whole API on a store and a signer made elsewhere (a fixture's), on an ephemeral port;
/// `dir` is kept as long as the app.
pub async fn spawn_app_on(
    (store, signer): (Arc<dyn Store>, Arc<dyn Signer>),
    backend: Backend,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let clock = Arc::new(TestClock::default());
    let (listener, base) = listen().await;
    let adjust = |settings: &mut Settings| settings.public_url = Some(base);
    let built = compose(store, signer, backend, dir, Arc::clone(&clock), adjust);
    serve_built(built, listener, clock).await
}

/// Starts the whole API on an ephemeral loopback port.
pub async fn spawn_app(backing: Backing) -> TestApp {
    spawn_app_with(backing, |_| {}).await
}

pub async fn spawn_app_with(backing: Backing, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let clock = Arc::new(TestClock::default());
    let (listener, base) = listen().await;
    let adjust = |settings: &mut Settings| {
        settings.public_url = Some(base);
        adjust(settings);
    };
    let built = build_app_with(backing, Arc::clone(&clock), adjust).await;
    serve_built(built, listener, clock).await
}

/// The whole API on a store that `wrap` makes from the backing's (a test's stand-in that
/// fails on cue, for one).
pub async fn spawn_app_wrapping(
    backing: Backing,
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    let clock = Arc::new(TestClock::default());
    let (listener, base) = listen().await;
    let adjust = |settings: &mut Settings| settings.public_url = Some(base);
    let built = build_app_wrapping(backing, Arc::clone(&clock), adjust, wrap).await;
    serve_built(built, listener, clock).await
}

/// A loopback listener on an ephemeral port, and its URL: the app's public URL, as
/// `m2m-local` takes its listen address.
async fn listen() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// DynamoDB and KMS (moto) each behind its own fault proxy, and the API on them.
pub struct Faulty {
    pub api: TestApp,
    pub dynamodb: fault_proxy::FaultProxy,
    pub kms: fault_proxy::FaultProxy,
}

/// `request_budget_seconds`: the service's default, or a shorter one to see it end requests.
pub async fn spawn_app_behind_fault_proxies(request_budget_seconds: u64) -> Faulty {
    spawn_signing_app_behind_fault_proxies(request_budget_seconds, Signing::Kms).await
}

pub async fn spawn_signing_app_behind_fault_proxies(
    request_budget_seconds: u64,
    signing: Signing,
) -> Faulty {
    let moto = moto_endpoint();
    let dynamodb = fault_proxy::FaultProxy::start(&moto).await;
    let kms = fault_proxy::FaultProxy::start(&moto).await;
    let (store, signer, backend) = moto_parts(
        &aws_config_at(&dynamodb.url).await,
        &aws_config_at(&kms.url).await,
        signing,
    )
    .await;
    behind_proxies(
        (store, signer, backend),
        (dynamodb, kms),
        request_budget_seconds,
    )
    .await
}

/// As [`spawn_signing_app_behind_fault_proxies`] for tests that count calls rather than time
/// them: the SDK and the request wait as long as a loaded moto takes (each call still counted
/// once), so a slow moto under the suite's load is never a 503.
pub async fn spawn_patient_app_behind_proxies(signing: Signing) -> Faulty {
    let moto = moto_endpoint();
    let dynamodb = fault_proxy::FaultProxy::start(&moto).await;
    let kms = fault_proxy::FaultProxy::start(&moto).await;
    let parts = moto_parts(
        &patient_config_at(&dynamodb.url).await,
        &patient_config_at(&kms.url).await,
        signing,
    )
    .await;
    behind_proxies(parts, (dynamodb, kms), 120).await
}

async fn behind_proxies(
    (store, signer, backend): (Arc<dyn Store>, Arc<dyn Signer>, Backend),
    (dynamodb, kms): (fault_proxy::FaultProxy, fault_proxy::FaultProxy),
    request_budget_seconds: u64,
) -> Faulty {
    let clock = Arc::new(TestClock::default());
    let (listener, base) = listen().await;
    let built = compose(
        store,
        signer,
        backend,
        None,
        Arc::clone(&clock),
        |settings| {
            settings.request_budget_seconds = request_budget_seconds;
            settings.public_url = Some(base);
        },
    );
    Faulty {
        api: serve_built(built, listener, clock).await,
        dynamodb,
        kms,
    }
}

async fn serve_built(
    built: Built,
    listener: tokio::net::TcpListener,
    clock: Arc<TestClock>,
) -> TestApp {
    let Built {
        app,
        store,
        table,
        dir: data_dir,
    } = built;
    // As `m2m-local` does at start-up.
    app.prepare_credential_checks().await.unwrap();
    let vendor = app.vendors().create("tests".into()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(m2m_shared::runtime::serve(Arc::clone(&app), listener));
    TestApp {
        base,
        http: reqwest::Client::new(),
        app,
        store,
        table,
        clock,
        vendor_client_id: vendor.record.client_id.to_string(),
        vendor_secret: vendor.secret.expose().to_owned(),
        _data_dir: data_dir,
        server,
    }
}

/// Runs `program` on one of `tests/clients/`'s scripts, off the async runtime so the test
/// server keeps serving.
pub async fn run_client(program: &str, script: &str, args: Vec<String>) -> std::process::Output {
    let script = format!("{}/../tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new(program);
    command.arg(script).args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Runs one of `tests/clients/`'s Frontegg SDK programs on `cases` (JSON on its argv), with the
/// SDKs' environment pointing at `base` as `vendor` (clientId, secret); its last line, parsed.
pub async fn frontegg_client(
    program: &str,
    script: &str,
    base: &str,
    (client_id, secret): (&str, &str),
    cases: &Value,
) -> Value {
    let script = format!("{}/../tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new(program);
    command
        .arg(script)
        .arg(cases.to_string())
        .env("FRONTEGG_API_GATEWAY_URL", base)
        .env("FRONTEGG_CLIENT_ID", client_id)
        .env("FRONTEGG_API_KEY", secret);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A status and a parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["errors"][0].as_str().unwrap_or_default()
    }

    /// Asserts the answer is `status` with an error that says `says` (`case` names what was
    /// tried, in the failure's message).
    #[track_caller]
    pub fn assert_refused(&self, status: StatusCode, says: &str, case: impl std::fmt::Display) {
        assert_eq!(self.status, status, "{case}: {:?}", self.body);
        assert!(
            self.error().contains(says),
            "{case}: {:?} should say {says:?}",
            self.error()
        );
    }
}

pub const USER_TOKENS: &str = "/identity/resources/users/api-tokens/v1";
pub const TENANT_TOKENS: &str = "/identity/resources/tenants/api-tokens/v1";
pub const TENANT_TOKENS_V2: &str = "/identity/resources/tenants/api-tokens/v2";
pub const EXCHANGE_V1: &str = "/identity/resources/auth/v1/api-token";
pub const EXCHANGE_V2: &str = "/identity/resources/auth/v2/api-token";
pub const REFRESH_V1: &str = "/identity/resources/auth/v1/api-token/token/refresh";
pub const REFRESH_V2: &str = "/identity/resources/auth/v2/api-token/token/refresh";
pub const CONFIGURATIONS: &str = "/identity/resources/configurations/v1";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const PERMISSIONS: &str = "/identity/resources/permissions/v1";
pub const ROLES: &str = "/identity/resources/roles/v1";
pub const VENDOR_CREDENTIALS: &str = "/vendor/v1/credentials";

impl TestApp {
    /// Stops serving and lets go of the app, so that its store closes; its data folder, if any.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.server.abort();
        let _ = self.server.await;
        // Its connections' tasks hold the app until they see their sockets close.
        drop(self.http);
        for _ in 0..100 {
            if Arc::strong_count(&self.app) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(Arc::strong_count(&self.app), 1, "the app is let go");
        self._data_dir
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let text = response.text().await.unwrap();
        // Every answer is JSON, but a 204's, which has no body (null here).
        let body = match status {
            reqwest::StatusCode::NO_CONTENT if text.is_empty() => Value::Null,
            _ => serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("every answer is JSON, got {status}: {text:?}")),
        };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        self.post_raw(path, headers, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: String) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub async fn vendor_token(&self) -> String {
        let reply = self
            .post(
                "/auth/vendor",
                &[],
                &json!({"clientId": self.vendor_client_id, "secret": self.vendor_secret}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// The user as the store holds them, if they exist.
    pub async fn stored_user(&self, id: &str) -> Option<m2m_shared::domain::directory::User> {
        let kind = m2m_shared::domain::directory::EntityKind::User;
        let record = self.store.record(kind, id).await.unwrap()?.0;
        record.doc.map(|doc| doc.try_into().unwrap())
    }

    /// Creates (or updates) the tenant `tenant`.
    pub async fn tenant(&self, vendor: &str, tenant: &str) {
        let path = format!("/identity/resources/tenants/v1/{tenant}");
        let reply = self
            .put(
                &path,
                &[("x-access-token", vendor)],
                &json!({"name": tenant}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }

    /// Creates a tenant token for `tenant` (creating the tenant) and returns (clientId, secret).
    pub async fn tenant_token(&self, vendor: &str, tenant: &str, body: Value) -> (String, String) {
        self.tenant(vendor, tenant).await;
        let reply = self
            .post(
                TENANT_TOKENS,
                &[("x-access-token", vendor), ("frontegg-tenant-id", tenant)],
                &body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        credentials(&reply)
    }

    /// Creates permission `p-read` with key `reports.read`.
    pub async fn reports_read_permission(&self, vendor: &str) {
        let body = json!({"id": "p-read", "key": "reports.read"});
        let reply = self
            .post(PERMISSIONS, &[("x-access-token", vendor)], &body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    /// Creates permission `p-read` (`reports.read`) and role `r-reader` (`reader`) holding it.
    pub async fn reader_role(&self, vendor: &str) {
        self.reports_read_permission(vendor).await;
        let role = json!({"id": "r-reader", "key": "reader", "permissionIds": ["p-read"]});
        let made = self.post(ROLES, &[("x-access-token", vendor)], &role).await;
        assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    }

    /// Makes `user` a member of `tenant` (creating the tenant) with `role_ids` (the directory's
    /// PUT user).
    pub async fn member(&self, vendor: &str, user: &str, tenant: &str, role_ids: Value) {
        self.tenant(vendor, tenant).await;
        let body = json!({"email": format!("{user}@example.test"), "tenants": [{"tenantId": tenant, "roleIds": role_ids}]});
        let reply = self
            .put(
                &format!("/identity/resources/users/v1/{user}"),
                &[("x-access-token", vendor)],
                &body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }

    pub async fn put(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        self.with_body(reqwest::Method::PUT, path, headers, body)
            .await
    }

    async fn with_body(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    pub async fn user_token(
        &self,
        vendor: &str,
        tenant: &str,
        user: &str,
        body: Value,
    ) -> (String, String) {
        let reply = self
            .post(
                USER_TOKENS,
                &[
                    ("x-access-token", vendor),
                    ("frontegg-tenant-id", tenant),
                    ("frontegg-user-id", user),
                ],
                &body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        credentials(&reply)
    }

    /// `POST /oauth/token` with the credentials in the form: its status and JSON body.
    pub async fn oauth_grant(&self, client_id: &str, secret: &str) -> (StatusCode, Value) {
        let form =
            format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
        let answer = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.json().await.unwrap())
    }

    pub async fn exchange(&self, path: &str, client_id: &str, secret: &str) -> Reply {
        self.post(path, &[], &json!({"clientId": client_id, "secret": secret}))
            .await
    }
}

pub fn credentials(reply: &Reply) -> (String, String) {
    (
        reply.body["clientId"].as_str().unwrap().to_owned(),
        reply.body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Verifies an RS256 JWT with the given key as a vendor's API would, and returns its claims.
pub fn verify_with(token: &str, key: &jsonwebtoken::DecodingKey) -> Value {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["test-api"]);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .expect("the JWT verifies")
        .claims
}

/// Runs the behaviour `$name(&TestApp)` as two tests, on a fresh app on each store.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            use $crate::{Backing, spawn_app};

            #[tokio::test]
            async fn on_the_embedded_store() {
                super::$name(&spawn_app(Backing::Embedded).await).await;
            }

            #[tokio::test]
            async fn on_dynamodb() {
                super::$name(&spawn_app(Backing::Moto).await).await;
            }
        }
    };
}

/// The path of one of the workspace's binaries (`m2m-local`, `m2m-admin`, a function's), built
/// from the code under test: `cargo build` of the functions' binaries runs once per test
/// process, into this test binary's own target folder and profile, so no test runs a stale one.
pub fn binary(name: &str) -> &'static str {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let profile_dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test binary>
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
        let target_dir = profile_dir.parent().unwrap();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "m2m-functions",
                "--bins",
                "--profile",
            ])
            .arg(&profile)
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "cargo build of the functions' binaries failed"
        );
        profile_dir
    });
    let path = profile_dir.join(name).to_string_lossy().into_owned();
    Box::leak(path.into_boxed_str())
}
