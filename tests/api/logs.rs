//! Logs never carry a secret, a hash or a token: a Lambda function run as Lambda runs it (the
//! real binary, polling a stand-in of the Runtime API on loopback) at `RUST_LOG=trace`
//! exchanges real credentials, and its whole output is searched for them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{Backend, Backing, moto_endpoint, spawn_app};

/// The Runtime API's side of one invocation: `event` for the first poll, then nothing; the
/// function's answer, when it comes.
#[derive(Clone)]
struct Runtime {
    event: Arc<Mutex<Option<String>>>,
    answer: Arc<Mutex<Option<Bytes>>>,
}

async fn next(axum::extract::State(runtime): axum::extract::State<Runtime>) -> impl IntoResponse {
    let Some(event) = runtime.event.lock().unwrap().take() else {
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
    let deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "logs-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:exchange".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
        ("content-type", "application/json".to_owned()),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    (StatusCode::OK, headers, event)
}

async fn answer(
    axum::extract::State(runtime): axum::extract::State<Runtime>,
    body: Bytes,
) -> StatusCode {
    *runtime.answer.lock().unwrap() = Some(body);
    StatusCode::ACCEPTED
}

/// Runs the exchange binary for one invocation of `event`; its answer and its whole output.
async fn invoke_exchange(backend: &Backend, event: String) -> (Value, String) {
    let Backend::Aws {
        table, kms_key_id, ..
    } = backend
    else {
        panic!("the functions run on AWS");
    };
    let runtime = Runtime {
        event: Arc::new(Mutex::new(Some(event))),
        answer: Arc::default(),
    };
    let api = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
        .with_state(runtime.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, api).await });
    let output = tempfile::NamedTempFile::new().unwrap();
    let mut function = tokio::process::Command::new(crate::support::binary("exchange"))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "exchange".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "logs".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "logs".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_ENDPOINT_URL", moto_endpoint()),
            ("M2M_TABLE", table.clone()),
            ("M2M_KMS_KEY_ID", kms_key_id.clone()),
            ("RUST_LOG", "trace".into()),
        ])
        .stdout(output.reopen().unwrap())
        .stderr(output.reopen().unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut answered = None;
    for _ in 0..600 {
        answered = runtime.answer.lock().unwrap().take();
        if answered.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    function.kill().await.unwrap();
    server.abort();
    let answered = answered.expect("the function answered within 30 s");
    let log = std::fs::read_to_string(output.path()).unwrap();
    (serde_json::from_slice(&answered).unwrap(), log)
}

#[tokio::test]
async fn a_lambda_function_at_trace_logs_no_secret_hash_or_token() {
    let t = spawn_app(Backing::Moto).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let stored = t
        .store
        .token(&m2m_shared::domain::ClientId::parse(&client_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/events/exchange-v1.json"
    );
    let event = std::fs::read_to_string(path)
        .unwrap()
        .replace("{{CLIENT_ID}}", &client_id)
        .replace("{{SECRET}}", &secret);

    let (answer, log) = invoke_exchange(&t.app.settings().backend, event).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let jwt = body["accessToken"].as_str().unwrap();
    let refresh_token = body["refreshToken"].as_str().unwrap();
    assert!(
        log.contains("finished processing request"),
        "the request is logged, at info:\n{log}"
    );
    // Every line of the request names it by API Gateway's id, as its answer does.
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("processing request"))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    for line in lines {
        assert!(line.contains(r#""request_id":"QxR76gHoAMEJ2w=""#), "{line}");
    }
    let headers = &answer["headers"];
    assert_eq!(headers["x-request-id"], "QxR76gHoAMEJ2w=", "{answer}");
    let hash = stored.secret.hash.as_stored();
    let signature = jwt.rsplit('.').next().unwrap();
    for (what, text) in [
        ("the secret", secret.as_str()),
        ("the secret's hash", hash),
        ("the JWT's signature", signature),
        ("the refresh token", refresh_token),
        (
            "the vendor token's signature",
            vendor.rsplit('.').next().unwrap(),
        ),
    ] {
        assert!(!log.contains(text), "{what} is in the log:\n{log}");
    }
}
