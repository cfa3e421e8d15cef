//! One arm per endpoint: parse the request, call one operation, shape the answer.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::{self, json_body};
use super::response::json;
use super::routes::{Casing, Endpoint};
use crate::app::App;
use crate::domain::{ApiToken, GrantId, Metadata, Secret, TokenOwner};
use crate::error::{Error, Result};
use crate::operations::{Issued, NewToken};

const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_METADATA_BYTES: usize = 2048;
const MAX_GRANTS: usize = 100;
/// Ten years.
const MAX_EXPIRES_IN_MINUTES: u32 = 10 * 366 * 24 * 60;

pub(super) async fn call(app: &App, endpoint: Endpoint, req: &Request) -> Result<Response<Body>> {
    match endpoint {
        Endpoint::VendorAuth => {
            let body: Credentials = json_body(req)?;
            let (token, expires_in) = app
                .authenticate_vendor(&body.client_id, &body.secret)
                .await?;
            json(200, &json!({ "token": token, "expiresIn": expires_in }))
        }
        Endpoint::Configurations => {
            request::vendor(app, req)?;
            json(200, &json!({ "publicKey": app.signer.public_key().pem() }))
        }
        Endpoint::Jwks => json(200, &json!({ "keys": [app.signer.public_key().jwk()] })),
        Endpoint::CreateUserToken => {
            request::vendor(app, req)?;
            let tenant_id = request::tenant_id(req)?;
            let user_id = request::required_user_id(req)?;
            let body: NewTokenBody = json_body(req)?;
            let new =
                body.into_new_token(tenant_id, TokenOwner::User(user_id.clone()), Some(user_id))?;
            let created = app.create_token(new).await?;
            json(201, &token_view(&created.record, Some(&created.secret)))
        }
        Endpoint::CreateTenantToken => {
            request::vendor(app, req)?;
            let tenant_id = request::tenant_id(req)?;
            let created_by = request::user_id(req)?;
            let body: NewTokenBody = json_body(req)?;
            let new = body.into_new_token(tenant_id, TokenOwner::Tenant, created_by)?;
            let created = app.create_token(new).await?;
            json(201, &token_view(&created.record, Some(&created.secret)))
        }
        Endpoint::Exchange(casing) => {
            let body: Credentials = json_body(req)?;
            let issued = app.exchange(&body.client_id, &body.secret).await?;
            json(200, &issued_view(&issued, casing))
        }
        Endpoint::Refresh(casing) => {
            let body: RefreshBody = json_body(req)?;
            let token = match casing {
                Casing::Camel => body.refresh_token.or(body.refresh_token_snake),
                Casing::Snake => body.refresh_token_snake.or(body.refresh_token),
            }
            .ok_or_else(|| Error::bad_request("Missing field refreshToken"))?;
            let issued = app.refresh(&token).await?;
            json(200, &issued_view(&issued, casing))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    client_id: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: Option<String>,
    #[serde(rename = "refresh_token")]
    refresh_token_snake: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTokenBody {
    description: Option<String>,
    metadata: Option<Metadata>,
    role_ids: Option<Vec<String>>,
    permission_ids: Option<Vec<String>>,
    expires_in_minutes: Option<u32>,
}

impl NewTokenBody {
    fn into_new_token(
        self,
        tenant_id: crate::domain::TenantId,
        owner: TokenOwner,
        created_by_user_id: Option<crate::domain::UserId>,
    ) -> Result<NewToken> {
        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::bad_request(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let metadata = self.metadata.unwrap_or_default();
        if Value::Object(metadata.clone()).to_string().len() > MAX_METADATA_BYTES {
            return Err(Error::bad_request(format!(
                "metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"
            )));
        }
        if let Some(minutes) = self.expires_in_minutes
            && !(1..=MAX_EXPIRES_IN_MINUTES).contains(&minutes)
        {
            return Err(Error::bad_request(format!(
                "expiresInMinutes must be from 1 to {MAX_EXPIRES_IN_MINUTES}"
            )));
        }
        // Personal tokens act with their user's roles; only tenant tokens are granted any.
        let (role_ids, permission_ids) = match owner {
            TokenOwner::Tenant => match self.role_ids {
                // As Frontegg: when both are given, roleIds wins.
                Some(roles) => (grant_ids("roleIds", roles)?, Vec::new()),
                None => (
                    Vec::new(),
                    grant_ids("permissionIds", self.permission_ids.unwrap_or_default())?,
                ),
            },
            TokenOwner::User(_) => (Vec::new(), Vec::new()),
        };
        Ok(NewToken {
            tenant_id,
            owner,
            created_by_user_id,
            description,
            metadata,
            role_ids,
            permission_ids,
            expires_in_minutes: self.expires_in_minutes,
        })
    }
}

fn grant_ids(field: &str, ids: Vec<String>) -> Result<Vec<GrantId>> {
    if ids.len() > MAX_GRANTS {
        return Err(Error::bad_request(format!(
            "{field} may hold at most {MAX_GRANTS} ids"
        )));
    }
    let mut parsed: Vec<GrantId> = ids
        .iter()
        .map(|id| {
            GrantId::parse(id).map_err(|e| Error::bad_request(format!("{field}: {id:?} {e}")))
        })
        .collect::<Result<_>>()?;
    parsed.dedup();
    Ok(parsed)
}

/// A token as management responses show it; the secret only when just created.
fn token_view(token: &ApiToken, secret: Option<&Secret>) -> Value {
    let mut view = json!({
        "clientId": token.client_id.to_string(),
        "description": token.description,
        "tenantId": token.tenant_id.to_string(),
        "metadata": token.metadata,
        "createdAt": token.created_at.iso8601(),
    });
    if let TokenOwner::Tenant = token.owner {
        view["createdByUserId"] = json!(token.created_by_user_id.as_ref().map(ToString::to_string));
        view["roleIds"] = json!(
            token
                .role_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        view["permissionIds"] = json!(
            token
                .permission_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
    }
    if let Some(expires) = token.expires_at {
        view["expires"] = json!(expires.iso8601());
    }
    if let Some(secret) = secret {
        view["secret"] = json!(secret.expose());
    }
    view
}

fn issued_view(issued: &Issued, casing: Casing) -> Value {
    let (access, refresh, expires_in) = match casing {
        Casing::Camel => ("accessToken", "refreshToken", "expiresIn"),
        Casing::Snake => ("access_token", "refresh_token", "expires_in"),
    };
    json!({
        access: issued.access_token,
        refresh: issued.refresh_token.expose(),
        expires_in: issued.expires_in,
        "expires": issued.expires_at.http_date(),
    })
}
