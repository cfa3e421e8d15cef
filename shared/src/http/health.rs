//! `GET /health`: the process answers (it touches nothing). `GET /health/ready`: the store and
//! the signer answer within a short budget; else 503 naming which, in the contract's shape.

use std::sync::Arc;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::request::Call;
use super::response::json;
use crate::app::App;
use crate::error::Result;
use crate::operations::Answer;

#[derive(Serialize)]
struct Alive {
    status: &'static str,
}

/// `GET /health`.
pub async fn alive(_: Arc<App>, _: Call) -> Result<Response> {
    json(StatusCode::OK, &Alive { status: "alive" })
}

#[derive(Serialize)]
struct Ready {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
    status: &'static str,
    store: Answer,
    signer: Answer,
}

/// `GET /health/ready`.
pub async fn ready(app: Arc<App>, _: Call) -> Result<Response> {
    let readiness = app.health().ready().await;
    let (status, said) = match readiness.is_ready() {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let body = Ready {
        errors: readiness.problems(),
        status: said,
        store: readiness.store,
        signer: readiness.signer,
    };
    let mut response = json(status, &body)?;
    if !readiness.is_ready() {
        // As long as a readiness is kept: asking sooner reads the same answer.
        let after = HeaderValue::from_static("5");
        response.headers_mut().insert(RETRY_AFTER, after);
    }
    Ok(response)
}
