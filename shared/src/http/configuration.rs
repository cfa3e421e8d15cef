//! Frontegg's configuration: the PEM key its SDKs verify with, and the vendor's switches for
//! API tokens (whether they work, of each kind, and the longest expiry).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::caller::Vendor;
use super::request::{Call, StrictBody, nullable};
use super::response::json;
use crate::app::App;
use crate::domain::branding::Branding;
use crate::domain::configuration::TokenSettings;
use crate::domain::rules;
use crate::error::Result;

/// The fields of Frontegg's configuration that apply here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    /// The key new JWTs are signed with (Frontegg's SDKs verify with this one).
    public_key: String,
    /// Every key whose JWTs verify, the signing key first: during a signing-key rotation, the
    /// previous key too (an addition to Frontegg's fields).
    public_keys: Vec<String>,
    jwt_algorithm: &'static str,
    /// The access token's lifetime in seconds.
    default_token_expiration: i64,
    api_tokens_enabled: bool,
    personal_tokens_enabled: bool,
    tenant_tokens_enabled: bool,
    /// `null` when tokens may live as long as they are made to.
    max_expires_in_minutes: Option<u32>,
    /// The portal's look (an addition to Frontegg's fields).
    branding: Branding,
}

fn answer(app: &App, settings: TokenSettings) -> Result<Response> {
    let configuration = Configuration {
        public_key: app.public_key().pem(),
        public_keys: app.published_keys().iter().map(|key| key.pem()).collect(),
        jwt_algorithm: "RS256",
        default_token_expiration: app.access_token_ttl_seconds(),
        api_tokens_enabled: settings.api_tokens_enabled,
        personal_tokens_enabled: settings.personal_tokens_enabled,
        tenant_tokens_enabled: settings.tenant_tokens_enabled,
        max_expires_in_minutes: settings.max_expires_in_minutes,
        branding: settings.branding,
    };
    json(StatusCode::OK, &configuration)
}

/// What anyone may read of the configuration: the keys JWTs verify with.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublicConfiguration {
    public_key: String,
    public_keys: Vec<String>,
    jwt_algorithm: &'static str,
    default_token_expiration: i64,
    /// The portal's look: what its page shows anyone.
    branding: Branding,
}

/// `GET /identity/resources/configurations/v1/public`: anonymous, the verification keys and
/// the portal's branding (the vendor's switches are the vendor's).
pub async fn public_configuration(app: Arc<App>, _: Call) -> Result<Response> {
    let branding = app.directory().branding().await;
    let configuration = PublicConfiguration {
        public_key: app.public_key().pem(),
        public_keys: app.published_keys().iter().map(|key| key.pem()).collect(),
        jwt_algorithm: "RS256",
        default_token_expiration: app.access_token_ttl_seconds(),
        branding,
    };
    json(StatusCode::OK, &configuration)
}

/// `GET /identity/resources/configurations/v1`.
pub async fn configurations(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    let settings = app.directory().token_settings().await?;
    answer(&app, settings)
}

/// What a `PATCH` may change; a field left out keeps its value.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigurationPatch {
    api_tokens_enabled: Option<bool>,
    personal_tokens_enabled: Option<bool>,
    tenant_tokens_enabled: Option<bool>,
    /// `Some(None)`: `null`, which lifts the maximum.
    #[serde(default, deserialize_with = "nullable")]
    max_expires_in_minutes: Option<Option<Number>>,
    /// Any JSON, so that a bad field is refused by name; replaces the branding as a whole.
    branding: Option<serde_json::Value>,
}

impl StrictBody for ConfigurationPatch {
    const NULLABLE: &'static [&'static str] = &["maxExpiresInMinutes"];
}

/// The fields a change of the configuration reads.
const FIELDS: &[&str] = &[
    "apiTokensEnabled",
    "personalTokensEnabled",
    "tenantTokensEnabled",
    "maxExpiresInMinutes",
];

/// `PATCH /identity/resources/configurations/v1` (ours, strict: an unknown field, a repeated
/// one or a `null` other than `maxExpiresInMinutes` is a 400): the fields present change; a
/// null `maxExpiresInMinutes` lifts the maximum.
pub async fn patch_configurations(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    change(&app, &call, call.strict_json()?).await
}

/// Frontegg's `POST /identity/resources/configurations/v1`: as `PATCH`, but the fields that
/// are not ours (Frontegg's other settings) are ignored, and a `null` leaves a switch as it is.
pub async fn post_configurations(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    change(&app, &call, call.json_fields(FIELDS)?).await
}

async fn change(app: &App, call: &Call, patch: ConfigurationPatch) -> Result<Response> {
    let max = patch
        .max_expires_in_minutes
        .map(|max| rules::max_expires_in_minutes(max.as_ref()))
        .transpose()?;
    let branding = patch
        .branding
        .as_ref()
        .map(Branding::from_json)
        .transpose()?;
    let settings = app
        .directory()
        .by(call.attribution())
        .change_token_settings(|mut settings| {
            let keep = |new: Option<bool>, old: bool| new.unwrap_or(old);
            settings.api_tokens_enabled =
                keep(patch.api_tokens_enabled, settings.api_tokens_enabled);
            settings.personal_tokens_enabled = keep(
                patch.personal_tokens_enabled,
                settings.personal_tokens_enabled,
            );
            settings.tenant_tokens_enabled =
                keep(patch.tenant_tokens_enabled, settings.tenant_tokens_enabled);
            settings.max_expires_in_minutes = max.unwrap_or(settings.max_expires_in_minutes);
            if let Some(branding) = branding.clone() {
                settings.branding = branding;
            }
            Ok(settings)
        })
        .await?;
    answer(app, settings)
}
