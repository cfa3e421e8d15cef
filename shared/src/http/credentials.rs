//! Credentials for JWTs: vendor authentication, the API-token exchange and refresh.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::request::Call;
use super::response::json;
use crate::app::App;
use crate::error::{Error, Result};
use crate::operations::Issued;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    client_id: String,
    secret: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VendorToken {
    token: String,
    expires_in: i64,
}

/// `POST /auth/vendor`.
pub async fn vendor_auth(app: Arc<App>, call: Call) -> Result<Response> {
    let body: Credentials = call.json()?;
    let (token, expires_in) = app
        .vendors()
        .by(call.attribution())
        .authenticate(&body.client_id, &body.secret, &call.issuer(&app))
        .await?;
    json(StatusCode::OK, &VendorToken { token, expires_in })
}

/// v1's answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuedCamel {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    expires: String,
}

/// v2's answer: the same fields in snake_case.
#[derive(Serialize)]
struct IssuedSnake {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    expires: String,
}

impl From<Issued> for IssuedCamel {
    fn from(issued: Issued) -> Self {
        Self {
            refresh_token: issued.refresh_token.expose().to_owned(),
            expires: issued.expires_at.http_date(),
            access_token: issued.access_token,
            expires_in: issued.expires_in,
        }
    }
}

impl From<IssuedCamel> for IssuedSnake {
    fn from(v1: IssuedCamel) -> Self {
        Self {
            access_token: v1.access_token,
            refresh_token: v1.refresh_token,
            expires_in: v1.expires_in,
            expires: v1.expires,
        }
    }
}

async fn exchange(app: &App, call: &Call) -> Result<IssuedCamel> {
    let body: Credentials = call.json()?;
    Ok(app
        .credentials(&call.issuer(app))
        .from_address(call.client())
        .exchange(&body.client_id, &body.secret)
        .await?
        .into())
}

/// `POST /identity/resources/auth/v1/api-token`.
pub async fn exchange_v1(app: Arc<App>, call: Call) -> Result<Response> {
    json(StatusCode::OK, &exchange(&app, &call).await?)
}

/// `POST /identity/resources/auth/v2/api-token`.
pub async fn exchange_v2(app: Arc<App>, call: Call) -> Result<Response> {
    json(
        StatusCode::OK,
        &IssuedSnake::from(exchange(&app, &call).await?),
    )
}

/// Either spelling is accepted on either version; the version's own wins.
#[derive(Deserialize)]
struct RefreshBody {
    #[serde(rename = "refreshToken")]
    camel: Option<String>,
    #[serde(rename = "refresh_token")]
    snake: Option<String>,
}

async fn refresh(app: &App, call: &Call, token: Option<String>) -> Result<IssuedCamel> {
    let token = token.ok_or_else(|| Error::bad_request("Missing field refreshToken"))?;
    let issued = app
        .credentials(&call.issuer(app))
        .from_address(call.client())
        .refresh(&token)
        .await?;
    Ok(issued.into())
}

/// `POST /identity/resources/auth/v1/api-token/token/refresh`.
pub async fn refresh_v1(app: Arc<App>, call: Call) -> Result<Response> {
    let body: RefreshBody = call.json()?;
    json(
        StatusCode::OK,
        &refresh(&app, &call, body.camel.or(body.snake)).await?,
    )
}

/// `POST /identity/resources/auth/v2/api-token/token/refresh`.
pub async fn refresh_v2(app: Arc<App>, call: Call) -> Result<Response> {
    let body: RefreshBody = call.json()?;
    let issued = refresh(&app, &call, body.snake.or(body.camel)).await?;
    json(StatusCode::OK, &IssuedSnake::from(issued))
}
