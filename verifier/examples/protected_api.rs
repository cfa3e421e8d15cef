//! A vendor's API protected by m2m-auth:
//!
//! ```bash
//! M2M_URL=http://127.0.0.1:8080 M2M_AUDIENCE=m2m-api cargo run -p m2m-verify --example protected_api
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:3000/reports
//! ```

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router, middleware};
use m2m_verify::axum::{Rejection, authenticate};
use m2m_verify::{Claims, Verifier};

async fn reports(claims: Claims) -> Result<Json<serde_json::Value>, Rejection> {
    claims.require_permission("reports.read")?;
    Ok(Json(
        serde_json::json!({ "tenant": claims.tenant_id, "reports": [] }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("M2M_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("M2M_AUDIENCE").unwrap_or_else(|_| "m2m-api".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let verifier = Arc::new(Verifier::discover(&base, &audience).await?);
    let app = Router::new()
        .route("/reports", get(reports))
        .route_layer(middleware::from_fn_with_state(verifier, authenticate));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("protected API on http://{listen}/reports");
    axum::serve(listener, app).await?;
    Ok(())
}
