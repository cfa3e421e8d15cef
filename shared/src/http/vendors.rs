//! The vendor's own credentials: listed, created, rotated and revoked through the running
//! service (what `m2m-admin vendors` calls), with a vendor token.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::caller::Vendor;
use super::request::{Call, StrictBody};
use super::response::{done, json};
use super::tokens::{SecretView, grace_minutes};
use crate::app::App;
use crate::domain::rules;
use crate::domain::{ClientId, Secret, VendorCredential};
use crate::error::Result;
use crate::operations::CREDENTIAL;

/// What a credential's views show; never a hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialView<'v> {
    client_id: ClientId,
    name: &'v str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    #[serde(flatten)]
    secret: SecretView<'v>,
}

impl<'v> CredentialView<'v> {
    fn of(vendor: &'v VendorCredential, secret: Option<&'v Secret>) -> Self {
        Self {
            client_id: vendor.client_id,
            name: &vendor.name,
            created_at: vendor.created_at.iso8601(),
            last_used_at: vendor.last_used_at.map(|t| t.iso8601()),
            secret: SecretView::of(&vendor.secret, secret),
        }
    }
}

/// Any JSON per field, so that a wrong type is refused naming the field.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCredentialBody {
    name: Option<serde_json::Value>,
}

impl StrictBody for NewCredentialBody {}

/// `GET /vendor/v1/credentials`: every credential, oldest first.
pub async fn list(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    let all = app.vendors().list().await?;
    let views: Vec<_> = all.iter().map(|v| CredentialView::of(v, None)).collect();
    json(StatusCode::OK, &views)
}

/// `POST /vendor/v1/credentials` `{"name"}`: a new credential, its secret shown once.
pub async fn create(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: NewCredentialBody = call.strict_json_or_default()?;
    let name = rules::credential_name(body.name.as_ref())?;
    let created = app.vendors().by(call.attribution()).create(name).await?;
    let view = CredentialView::of(&created.record, Some(&created.secret));
    json(StatusCode::CREATED, &view)
}

/// `POST /vendor/v1/credentials/{id}/rotate` `{"graceMinutes"?}`: a new secret, shown once.
pub async fn rotate(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let grace = grace_minutes(&call)?;
    let rotated = app
        .vendors()
        .by(call.attribution())
        .rotate(&call.client_id(CREDENTIAL)?, grace)
        .await?;
    let view = CredentialView::of(&rotated.record, Some(&rotated.secret));
    json(StatusCode::OK, &view)
}

/// `DELETE /vendor/v1/credentials/{id}`: revokes the credential and its vendor tokens.
pub async fn revoke(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.vendors()
        .by(call.attribution())
        .revoke(&call.client_id(CREDENTIAL)?)
        .await?;
    done()
}
