//! A stand-in of Lambda's Runtime API on loopback: a function's real binary polls it for
//! events, as it polls Lambda, and posts its answers (or its errors) back.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;

/// The Runtime API's side: the events still to hand out, the answers posted so far, and
/// whether the function has asked for an event after the last one.
#[derive(Clone, Default)]
struct Runtime {
    events: Arc<Mutex<VecDeque<String>>>,
    answers: Arc<Mutex<Vec<Bytes>>>,
    idle: Arc<std::sync::atomic::AtomicBool>,
}

async fn next(axum::extract::State(runtime): axum::extract::State<Runtime>) -> impl IntoResponse {
    let event = runtime.events.lock().unwrap().pop_front();
    let Some(event) = event else {
        runtime
            .idle
            .store(true, std::sync::atomic::Ordering::SeqCst);
        std::future::pending::<()>().await;
        unreachable!()
    };
    let number = runtime.answers.lock().unwrap().len() + 1;
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
    let deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for (name, value) in [
        (
            "lambda-runtime-aws-request-id",
            format!("invocation-{number}"),
        ),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:m2m".to_owned(),
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
    runtime.answers.lock().unwrap().push(body);
    StatusCode::ACCEPTED
}

/// What a function did with its events: its answers in order, its whole output (stdout and
/// stderr), and its exit status if it stopped by itself.
pub struct Run {
    pub answers: Vec<Value>,
    pub log: String,
    pub exit: Option<ExitStatus>,
}

/// The stand-in on a loopback port: its address, and its task.
async fn serve(
    runtime: Runtime,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let api = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
        .with_state(runtime);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (
        address,
        tokio::spawn(async move { axum::serve(listener, api).await }),
    )
}

/// Runs the function binary `name` with `env` (beside the variables Lambda sets) on `events`,
/// one invocation each, until it has answered them all and asks for more, or exits; 30 s at most.
pub async fn invoke(name: &str, env: &[(&str, String)], events: Vec<String>) -> Run {
    let runtime = Runtime {
        events: Arc::new(Mutex::new(events.into())),
        ..Runtime::default()
    };
    let (address, server) = serve(runtime.clone()).await;
    // Apart, so that a line of one is never cut by a line of the other.
    let (stdout, stderr) = (
        tempfile::NamedTempFile::new().unwrap(),
        tempfile::NamedTempFile::new().unwrap(),
    );
    let mut function = tokio::process::Command::new(crate::binary(name))
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "logs".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "logs".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(stdout.reopen().unwrap())
        .stderr(stderr.reopen().unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut exit = None;
    for _ in 0..600 {
        // As on Lambda, an invocation ends when the function asks for the next one: what
        // it does after posting its answer (writing its metrics) happens before that.
        if runtime.idle.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        if let Some(status) = function.try_wait().unwrap() {
            exit = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if exit.is_none() {
        function.kill().await.unwrap();
    }
    server.abort();
    let answers = runtime.answers.lock().unwrap().clone();
    Run {
        answers: answers
            .iter()
            .map(|body| serde_json::from_slice(body).unwrap_or(Value::Null))
            .collect(),
        log: [stdout.path(), stderr.path()]
            .map(|path| std::fs::read_to_string(path).unwrap())
            .concat(),
        exit,
    }
}
