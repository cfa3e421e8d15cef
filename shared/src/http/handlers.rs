//! One arm per endpoint: parse the request, call one operation, shape the answer.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::{self, json_body};
use super::response::json;
use super::routes::{Casing, Endpoint, Resolved};
use crate::app::App;
use crate::domain::directory::{EntityKind, Membership, Permission, Role, Tenant, User};
use crate::domain::ids::InvalidId;
use crate::domain::{ApiToken, GrantId, Metadata, Secret, TenantId, TokenOwner, UserId};
use crate::error::{Error, Result};
use crate::operations::{Caller, Issued, NewToken, TokenPatch};

/// The API's OpenAPI 3.1 description; a test holds it to the route table.
pub const OPENAPI: &str = include_str!("../../openapi.json");

const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_METADATA_BYTES: usize = 2048;
const MAX_GRANTS: usize = 100;
/// Ten years.
const MAX_EXPIRES_IN_MINUTES: u32 = 10 * 366 * 24 * 60;

pub(super) async fn call(app: &App, route: Resolved, req: &Request) -> Result<Response<Body>> {
    let id = route.id.as_deref().unwrap_or_default();
    match route.endpoint {
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
        Endpoint::OpenApi => {
            let document: Value = serde_json::from_str(OPENAPI).map_err(Error::internal)?;
            json(200, &document)
        }
        Endpoint::OpenIdConfiguration => {
            let base = app
                .settings
                .public_url
                .clone()
                .unwrap_or_else(|| request::public_base_url(req));
            json(
                200,
                &json!({
                    "issuer": app.settings.issuer,
                    "jwks_uri": format!("{base}/.well-known/jwks.json"),
                    "token_endpoint": format!("{base}/identity/resources/auth/v2/api-token"),
                    "grant_types_supported": ["client_credentials"],
                    "response_types_supported": ["token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                }),
            )
        }
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
        Endpoint::ListUserTokens | Endpoint::ListTenantTokens => {
            let caller = caller(app, req, route.endpoint == Endpoint::ListUserTokens)?;
            let tokens = app.list_tokens(&caller).await?;
            let views: Vec<Value> = tokens.iter().map(|t| token_view(t, None)).collect();
            json(200, &views)
        }
        Endpoint::DeleteUserToken | Endpoint::DeleteTenantToken => {
            let caller = caller(app, req, route.endpoint == Endpoint::DeleteUserToken)?;
            app.delete_token(&caller, id).await?;
            json(200, &json!({}))
        }
        Endpoint::PatchTenantToken => {
            let caller = caller(app, req, false)?;
            let body: TokenPatchBody = json_body(req)?;
            let patch = body.into_patch()?;
            let token = app.patch_token(&caller, id, patch).await?;
            json(200, &token_view(&token, None))
        }
        Endpoint::CreatePermission => {
            request::vendor(app, req)?;
            let body: PermissionBody = json_body(req)?;
            let permission = Permission {
                id: new_or_given_id(body.id)?,
                key: grant_key(body.key)?,
                name: body.name.unwrap_or_default(),
                description: body.description.unwrap_or_default(),
            };
            app.put_permission(&permission, None).await?;
            json(201, &permission)
        }
        Endpoint::ListPermissions => {
            request::vendor(app, req)?;
            json(200, &app.permissions().await?)
        }
        Endpoint::DeletePermission | Endpoint::DeleteRole => {
            request::vendor(app, req)?;
            let kind = match route.endpoint {
                Endpoint::DeleteRole => EntityKind::Role,
                _ => EntityKind::Permission,
            };
            app.delete_grant(kind, id, None).await?;
            json(200, &json!({}))
        }
        Endpoint::CreateRole => {
            request::vendor(app, req)?;
            let body: RoleBody = json_body(req)?;
            let role = Role {
                id: new_or_given_id(body.id)?,
                key: grant_key(
                    body.key
                        .ok_or_else(|| Error::bad_request("Missing field key"))?,
                )?,
                name: body.name.unwrap_or_default(),
                permission_ids: grant_ids(
                    "permissionIds",
                    body.permission_ids.unwrap_or_default(),
                )?,
            };
            app.put_role(&role, None).await?;
            json(201, &role)
        }
        Endpoint::ListRoles => {
            request::vendor(app, req)?;
            json(200, &app.roles().await?)
        }
        Endpoint::PatchRole => {
            request::vendor(app, req)?;
            let body: RoleBody = json_body(req)?;
            let mut role = app.role(id).await?;
            if let Some(key) = body.key {
                role.key = grant_key(key)?;
            }
            if let Some(name) = body.name {
                role.name = name;
            }
            if let Some(ids) = body.permission_ids {
                role.permission_ids = grant_ids("permissionIds", ids)?;
            }
            app.put_role(&role, None).await?;
            json(200, &role)
        }
        Endpoint::PutTenant => {
            request::vendor(app, req)?;
            let body: TenantBody = json_body(req)?;
            let tenant = Tenant {
                id: path_id(id, TenantId::parse)?,
                name: body.name.unwrap_or_default(),
                metadata: body.metadata.unwrap_or_default(),
            };
            app.put_tenant(&tenant, None).await?;
            json(200, &tenant)
        }
        Endpoint::DeleteTenant => {
            request::vendor(app, req)?;
            app.delete_tenant(&path_id(id, TenantId::parse)?, None)
                .await?;
            json(200, &json!({}))
        }
        Endpoint::PutUser => {
            request::vendor(app, req)?;
            let body: UserBody = json_body(req)?;
            let user = body.into_user(path_id(id, UserId::parse)?)?;
            app.put_user(&user, None).await?;
            json(200, &user)
        }
        Endpoint::DeleteUser => {
            request::vendor(app, req)?;
            app.delete_user(&path_id(id, UserId::parse)?, None).await?;
            json(200, &json!({}))
        }
    }
}

/// The management caller: a vendor token plus the tenant (and, for personal tokens, the user).
fn caller(app: &App, req: &Request, personal: bool) -> Result<Caller> {
    request::vendor(app, req)?;
    Ok(Caller {
        tenant_id: request::tenant_id(req)?,
        user_id: if personal {
            Some(request::required_user_id(req)?)
        } else {
            None
        },
    })
}

fn path_id<T>(id: &str, parse: impl Fn(&str) -> Result<T, InvalidId>) -> Result<T> {
    parse(id).map_err(|e| Error::bad_request(format!("Id in path {e}")))
}

fn new_or_given_id(id: Option<String>) -> Result<GrantId> {
    match id {
        Some(id) => GrantId::parse(&id).map_err(|e| Error::bad_request(format!("id {e}"))),
        None => GrantId::parse(&uuid::Uuid::new_v4().to_string()).map_err(Error::internal),
    }
}

const MAX_KEY_CHARS: usize = 256;

/// A role or permission key as it appears in JWTs: non-empty, no spaces or control characters.
fn grant_key(key: String) -> Result<String> {
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && !key.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(key)
    } else {
        Err(Error::bad_request(format!(
            "key must be 1 to {MAX_KEY_CHARS} characters without spaces"
        )))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionBody {
    id: Option<String>,
    key: String,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    id: Option<String>,
    key: Option<String>,
    name: Option<String>,
    permission_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantBody {
    name: Option<String>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipBody {
    tenant_id: String,
    #[serde(default)]
    role_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    email: Option<String>,
    #[serde(default)]
    tenants: Vec<MembershipBody>,
}

/// DynamoDB writes a user and its memberships in one transaction of at most 100 items.
const MAX_TENANTS_PER_USER: usize = 90;

impl UserBody {
    fn into_user(self, id: UserId) -> Result<User> {
        if self.tenants.len() > MAX_TENANTS_PER_USER {
            return Err(Error::bad_request(format!(
                "tenants may hold at most {MAX_TENANTS_PER_USER} memberships"
            )));
        }
        let mut tenants: Vec<Membership> = Vec::with_capacity(self.tenants.len());
        for m in self.tenants {
            let tenant_id = TenantId::parse(&m.tenant_id)
                .map_err(|e| Error::bad_request(format!("tenants: tenantId {e}")))?;
            if tenants.iter().any(|t| t.tenant_id == tenant_id) {
                return Err(Error::bad_request(format!(
                    "tenants: {tenant_id} is listed twice"
                )));
            }
            tenants.push(Membership {
                tenant_id,
                role_ids: grant_ids("roleIds", m.role_ids)?,
            });
        }
        Ok(User {
            id,
            email: self.email,
            tenants,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenPatchBody {
    description: Option<String>,
    metadata: Option<Metadata>,
    role_ids: Option<Vec<String>>,
    permission_ids: Option<Vec<String>>,
}

impl TokenPatchBody {
    fn into_patch(self) -> Result<TokenPatch> {
        if let Some(description) = &self.description {
            check_description(description)?;
        }
        if let Some(metadata) = &self.metadata {
            check_metadata(metadata)?;
        }
        Ok(TokenPatch {
            description: self.description,
            metadata: self.metadata,
            role_ids: self
                .role_ids
                .map(|ids| grant_ids("roleIds", ids))
                .transpose()?,
            permission_ids: self
                .permission_ids
                .map(|ids| grant_ids("permissionIds", ids))
                .transpose()?,
        })
    }
}

fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::bad_request(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_metadata(metadata: &Metadata) -> Result<()> {
    if Value::Object(metadata.clone()).to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::bad_request(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"
        )));
    }
    Ok(())
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
        check_description(&description)?;
        let metadata = self.metadata.unwrap_or_default();
        check_metadata(&metadata)?;
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
    if let Some(used) = token.last_used_at {
        view["lastUsedAt"] = json!(used.iso8601());
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
