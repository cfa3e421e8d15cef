//! The self-service portal's sessions: opened by the vendor's backend for a signed-in user,
//! handed to the page in a URL fragment, and swapped there for a session token.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::caller::UserOwner;
use super::request::Call;
use super::response::json;
use crate::app::App;
use crate::error::{Error, Result};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Opened {
    /// The portal page with the hand-off in its fragment, which no server log or `Referer`
    /// ever carries.
    url: String,
    expires_in: i64,
}

/// `POST /portal/v1/sessions`: the vendor opens the portal for a user of a tenant.
pub async fn open_session(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    let (handoff, expires_in) = app
        .portal()
        .open(caller.tenant_id(), caller.user_id())
        .await?;
    let url = format!(
        "{}/portal#handoff={}",
        call.base_url(&app),
        handoff.expose()
    );
    json(StatusCode::CREATED, &Opened { url, expires_in })
}

#[derive(Deserialize)]
struct HandoffBody {
    handoff: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionView {
    access_token: String,
    expires_in: i64,
}

/// `POST /portal/v1/sessions/handoff`: the page swaps its hand-off, once, for a session.
pub async fn swap_handoff(app: Arc<App>, call: Call) -> Result<Response> {
    let body: HandoffBody = call.json()?;
    let handoff = body
        .handoff
        .ok_or_else(|| Error::bad_request("Missing field handoff"))?;
    let session = app.portal().swap(&handoff, &call.issuer(&app)).await?;
    let view = SessionView {
        access_token: session.access_token,
        expires_in: session.expires_in,
    };
    json(StatusCode::OK, &view)
}
