//! The directory: permissions, roles, tenants and users, managed by the vendor.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::caller::Vendor;
use super::request::Call;
use super::response::{done, json};
use crate::app::App;
use crate::domain::directory::{EntityKind, Membership, Permission, Role, Tenant, User};
use crate::domain::ids::InvalidId;
use crate::domain::rules::{self, Invalid};
use crate::domain::{GrantId, Metadata, TenantId, UserId};
use crate::error::{Error, Result};

fn path_id<T>(call: &Call, parse: impl Fn(&str) -> Result<T, InvalidId>) -> Result<T> {
    parse(call.id()).map_err(|e| Error::bad_request(format!("Id in path {e}")))
}

fn new_or_given_id(id: Option<String>) -> Result<GrantId> {
    match id {
        Some(id) => GrantId::parse(&id).map_err(|e| Error::bad_request(format!("id {e}"))),
        None => GrantId::parse(&uuid::Uuid::new_v4().to_string()).map_err(Error::internal),
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

/// `POST /identity/resources/permissions/v1`.
pub async fn create_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: PermissionBody = call.json()?;
    let permission = Permission {
        id: new_or_given_id(body.id)?,
        key: rules::grant_key(body.key)?,
        name: body.name.unwrap_or_default(),
        description: body.description.unwrap_or_default(),
    };
    app.put_permission(&permission, None).await?;
    json(StatusCode::CREATED, &permission)
}

/// `GET /identity/resources/permissions/v1`.
pub async fn list_permissions(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    json(StatusCode::OK, &app.permissions().await?)
}

/// `DELETE /identity/resources/permissions/v1/{id}`.
pub async fn delete_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.delete_grant(EntityKind::Permission, call.id(), None)
        .await?;
    done()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    id: Option<String>,
    key: Option<String>,
    name: Option<String>,
    permission_ids: Option<Vec<String>>,
}

/// `POST /identity/resources/roles/v1`.
pub async fn create_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: RoleBody = call.json()?;
    let key = body
        .key
        .ok_or_else(|| Error::bad_request("Missing field key"))?;
    let role = Role {
        id: new_or_given_id(body.id)?,
        key: rules::grant_key(key)?,
        name: body.name.unwrap_or_default(),
        permission_ids: rules::grant_ids(
            "permissionIds",
            &body.permission_ids.unwrap_or_default(),
        )?,
    };
    app.put_role(&role, None).await?;
    json(StatusCode::CREATED, &role)
}

/// `GET /identity/resources/roles/v1`.
pub async fn list_roles(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    json(StatusCode::OK, &app.roles().await?)
}

/// `PATCH /identity/resources/roles/v1/{id}`: absent fields stay as they are.
pub async fn patch_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: RoleBody = call.json()?;
    let mut role = app.role(call.id()).await?;
    if let Some(key) = body.key {
        role.key = rules::grant_key(key)?;
    }
    if let Some(name) = body.name {
        role.name = name;
    }
    if let Some(ids) = body.permission_ids {
        role.permission_ids = rules::grant_ids("permissionIds", &ids)?;
    }
    app.put_role(&role, None).await?;
    json(StatusCode::OK, &role)
}

/// `DELETE /identity/resources/roles/v1/{id}`.
pub async fn delete_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.delete_grant(EntityKind::Role, call.id(), None).await?;
    done()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantBody {
    name: Option<String>,
    metadata: Option<Metadata>,
}

/// `PUT /identity/resources/tenants/v1/{id}`.
pub async fn put_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: TenantBody = call.json()?;
    let tenant = Tenant {
        id: path_id(&call, TenantId::parse)?,
        name: body.name.unwrap_or_default(),
        metadata: rules::metadata(body.metadata.unwrap_or_default())?,
    };
    app.put_tenant(&tenant, None).await?;
    json(StatusCode::OK, &tenant)
}

/// `DELETE /identity/resources/tenants/v1/{id}`: its tokens and memberships go with it.
pub async fn delete_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.delete_tenant(&path_id(&call, TenantId::parse)?, None)
        .await?;
    done()
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

fn memberships(tenants: Vec<MembershipBody>) -> Result<Vec<Membership>, Invalid> {
    if tenants.len() > rules::MAX_TENANTS_PER_USER {
        return Err(Invalid(format!(
            "tenants may hold at most {} memberships",
            rules::MAX_TENANTS_PER_USER
        )));
    }
    let mut parsed: Vec<Membership> = Vec::with_capacity(tenants.len());
    for m in tenants {
        let tenant_id =
            TenantId::parse(&m.tenant_id).map_err(|e| Invalid(format!("tenants: tenantId {e}")))?;
        if parsed.iter().any(|t| t.tenant_id == tenant_id) {
            return Err(Invalid(format!("tenants: {tenant_id} is listed twice")));
        }
        parsed.push(Membership {
            tenant_id,
            role_ids: rules::grant_ids("roleIds", &m.role_ids)?,
        });
    }
    Ok(parsed)
}

/// `PUT /identity/resources/users/v1/{id}`: the user with their roles per tenant.
pub async fn put_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: UserBody = call.json()?;
    let user = User {
        id: path_id(&call, UserId::parse)?,
        email: body.email,
        tenants: memberships(body.tenants)?,
    };
    app.put_user(&user, None).await?;
    json(StatusCode::OK, &user)
}

/// `DELETE /identity/resources/users/v1/{id}`: every personal token of theirs goes too.
pub async fn delete_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.delete_user(&path_id(&call, UserId::parse)?, None)
        .await?;
    done()
}
