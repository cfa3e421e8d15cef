//! The directory: permissions, roles, tenants and users, managed by the vendor. Bodies become
//! domain records through the same drafts as provisioning events.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::caller::{TenantOwner, Vendor};
use super::request::Call;
use super::response::{done, json};
use crate::app::App;
use crate::domain::directory::{
    EntityKind, MembershipDraft, Origin, Permission, PermissionDraft, Role, RoleChange, RoleDraft,
    Tenant, TenantChange, User, UserChange, UserDraft,
};
use crate::domain::rules::{self, GrantKey};
use crate::domain::{GrantId, Metadata, TenantId, UserId};
use crate::error::{Error, Result};

/// What the API wrote: its writes always apply (only an event may be older than the record).
fn written<T>(record: Option<T>) -> Result<T> {
    record.ok_or_else(|| Error::internal("an API write did not apply"))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionBody {
    id: Option<String>,
    key: String,
    name: Option<String>,
    description: Option<String>,
}

/// At most this many permissions or roles in one create.
const MAX_CREATED: usize = 100;

/// Answers one record, or all of them when the request was an array.
fn created<T: Serialize>(records: &[T], array: bool) -> Result<Response> {
    match records {
        [one] if !array => json(StatusCode::CREATED, one),
        all => json(StatusCode::CREATED, &all),
    }
}

/// Refuses a key given twice in one create, before anything is written.
fn keys_unique<'k>(keys: impl Iterator<Item = &'k GrantKey>) -> Result<()> {
    let mut seen: Vec<&GrantKey> = Vec::new();
    for key in keys {
        if seen.contains(&key) {
            let key = rules::excerpt(key.as_str());
            return Err(Error::bad_request(format!("key {key} is given twice")));
        }
        seen.push(key);
    }
    Ok(())
}

/// `POST /identity/resources/permissions/v1`: one permission, or Frontegg's array of them.
/// Every item is checked before any is stored.
pub async fn create_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let (bodies, array) = call.json_one_or_many::<PermissionBody>(MAX_CREATED)?;
    let permissions = bodies
        .into_iter()
        .map(|body| {
            Permission::try_from(PermissionDraft {
                id: body.id.unwrap_or_else(new_id),
                key: body.key,
                name: body.name,
                description: body.description,
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    keys_unique(permissions.iter().map(|p| &p.key))?;
    for permission in &permissions {
        app.directory()
            .put_permission(permission, Origin::Api)
            .await?;
    }
    created(&permissions, array)
}

/// `GET /identity/resources/permissions/v1`.
pub async fn list_permissions(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    json(StatusCode::OK, &app.directory().permissions().await?)
}

/// `DELETE /identity/resources/permissions/v1/{id}`.
pub async fn delete_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.directory()
        .delete_grant(
            EntityKind::Permission,
            call.grant_id("Permission")?.as_str(),
            Origin::Api,
        )
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

/// A role as answered: ours, with Frontegg's `permissions` (the same ids) beside it.
#[derive(Serialize)]
struct RoleView<'r> {
    #[serde(flatten)]
    role: &'r Role,
    permissions: &'r [GrantId],
}

impl<'r> RoleView<'r> {
    fn of(role: &'r Role) -> Self {
        Self {
            role,
            permissions: &role.permission_ids,
        }
    }
}

/// `POST /identity/resources/roles/v1`: one role, or Frontegg's array of them. Every item is
/// checked before any is stored.
pub async fn create_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let (bodies, array) = call.json_one_or_many::<RoleBody>(MAX_CREATED)?;
    let roles = bodies
        .into_iter()
        .map(|body| {
            Ok(Role::try_from(RoleDraft {
                id: body.id.unwrap_or_else(new_id),
                key: body
                    .key
                    .ok_or_else(|| Error::bad_request("Missing field key"))?,
                name: body.name,
                permission_ids: body.permission_ids.unwrap_or_default(),
            })?)
        })
        .collect::<Result<Vec<_>>>()?;
    keys_unique(roles.iter().map(|r| &r.key))?;
    for role in &roles {
        app.directory().put_role(role, Origin::Api).await?;
    }
    let views: Vec<RoleView<'_>> = roles.iter().map(RoleView::of).collect();
    created(&views, array)
}

/// `GET /identity/resources/roles/v1`.
pub async fn list_roles(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    let roles = app.directory().roles().await?;
    json(
        StatusCode::OK,
        &roles.iter().map(RoleView::of).collect::<Vec<_>>(),
    )
}

/// `PATCH /identity/resources/roles/v1/{id}`: absent fields stay as they are.
pub async fn patch_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    change_role(&app, call.grant_id("Role")?.as_str(), call.json()?).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionIdsBody {
    permission_ids: Option<Vec<String>>,
}

/// Frontegg's `PUT /identity/resources/roles/v1/{id}/permissions`: `permissionIds` become the
/// role's permissions.
pub async fn set_role_permissions(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: PermissionIdsBody = call.json()?;
    let ids = body
        .permission_ids
        .ok_or_else(|| Error::bad_request("Missing field permissionIds"))?;
    let change = RoleBody {
        id: None,
        key: None,
        name: None,
        permission_ids: Some(ids),
    };
    change_role(&app, call.grant_id("Role")?.as_str(), change).await
}

/// Applies `body` to the role as read inside one conditional write.
async fn change_role(app: &App, id: &str, body: RoleBody) -> Result<Response> {
    let change = RoleChange {
        key: body.key,
        name: body.name,
        permission_ids: body.permission_ids,
    };
    let patch = |stored: Role| Ok(change.apply(id, Some(stored))?);
    let role = app.directory().patch_role(id, patch).await?;
    json(StatusCode::OK, &RoleView::of(&role))
}

/// `DELETE /identity/resources/roles/v1/{id}`.
pub async fn delete_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.directory()
        .delete_grant(
            EntityKind::Role,
            call.grant_id("Role")?.as_str(),
            Origin::Api,
        )
        .await?;
    done()
}

/// A tenant as answered: ours, with Frontegg's `tenantId` (the same id) beside it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantView<'t> {
    #[serde(flatten)]
    tenant: &'t Tenant,
    tenant_id: &'t TenantId,
}

impl<'t> TenantView<'t> {
    fn of(tenant: &'t Tenant) -> Self {
        Self {
            tenant,
            tenant_id: &tenant.id,
        }
    }
}

/// `PUT /identity/resources/tenants/v1/{id}` and Frontegg's `PUT /tenants/resources/tenants/v1/{id}`:
/// a partial update (fields absent stay), creating the tenant if need be.
pub async fn put_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let change: TenantChange = call.json()?;
    let id = call.tenant_id()?;
    let directory = app.directory();
    let tenant = written(directory.upsert_tenant(&id, &change, Origin::Api).await?)?;
    json(StatusCode::OK, &TenantView::of(&tenant))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTenantBody {
    tenant_id: Option<String>,
    name: Option<String>,
    metadata: Option<Metadata>,
}

/// Frontegg's `POST /tenants/resources/tenants/v1` `{tenantId, name, metadata}`: a generated id
/// unless one is given.
pub async fn create_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: NewTenantBody = call.json()?;
    let id = body.tenant_id.unwrap_or_else(new_id);
    let id = rules::field("tenantId", TenantId::parse(&id))?;
    let change = TenantChange {
        name: body.name,
        metadata: body.metadata,
    };
    let directory = app.directory();
    let tenant = written(directory.upsert_tenant(&id, &change, Origin::Api).await?)?;
    json(StatusCode::CREATED, &TenantView::of(&tenant))
}

/// Frontegg's `GET /tenants/resources/tenants/v1/{id}`: as Frontegg, an array holding the
/// tenant, empty when there is none.
pub async fn get_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = call.tenant_id()?;
    let tenant = app.directory().tenant(&id).await?;
    let found: Vec<TenantView<'_>> = tenant.iter().map(TenantView::of).collect();
    json(StatusCode::OK, &found)
}

/// `DELETE /identity/resources/tenants/v1/{id}`: its tokens and memberships go with it.
pub async fn delete_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = call.tenant_id()?;
    app.directory().delete_tenant(&id, Origin::Api).await?;
    done()
}

/// `PUT /identity/resources/users/v1/{id}`: a partial update, as Frontegg's: only the fields
/// present change, and memberships only when `tenants` is present. A new id creates the user.
pub async fn put_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let change: UserChange = call.json()?;
    let id = call.user_id()?;
    let directory = app.directory();
    let user = written(directory.upsert_user(&id, &change, Origin::Api).await?)?;
    json(StatusCode::OK, &user)
}

/// `DELETE /identity/resources/users/v1/{id}`: with `frontegg-tenant-id`, removes the user from
/// that tenant only (and their personal tokens there), as Frontegg's does; without it, deletes
/// the user and every personal token of theirs.
pub async fn delete_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = call.user_id()?;
    match call.optional_header("frontegg-tenant-id")? {
        Some(tenant) => {
            let tenant = rules::field("frontegg-tenant-id", TenantId::parse(tenant))?;
            app.directory().remove_member(&id, &tenant).await?;
        }
        None => {
            app.directory().delete_user(&id, Origin::Api).await?;
        }
    }
    done()
}

/// Frontegg's body for a user created in a tenant.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUserBody {
    id: Option<String>,
    email: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::directory::user_metadata")]
    metadata: Option<Metadata>,
    #[serde(default)]
    role_ids: Vec<String>,
}

/// Frontegg's `POST /identity/resources/users/v1` with `frontegg-tenant-id`: a user created in
/// that tenant with `roleIds`, under a generated id unless one is given; 409 if the id is taken.
pub async fn create_user(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    let body: NewUserBody = call.json()?;
    let id = rules::field(
        "userId",
        UserId::parse(&body.id.clone().unwrap_or_else(new_id)),
    )?;
    let draft = || UserDraft {
        id: id.to_string(),
        email: body.email.clone(),
        name: body.name.clone(),
        metadata: body.metadata.clone(),
        tenants: vec![MembershipDraft {
            tenant_id: caller.tenant_id().to_string(),
            role_ids: body.role_ids.clone(),
        }],
    };
    let patch = |stored: Option<User>| -> Result<User> {
        if stored.is_some() {
            return Err(Error::Conflict(format!("User {id} exists")));
        }
        Ok(User::try_from(draft())?)
    };
    let user = app.directory().patch_user(&id, patch).await?;
    json(StatusCode::CREATED, &user)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleIdsBody {
    role_ids: Vec<String>,
}

/// Changes the roles the user holds in the caller's tenant; 404 when the user is not a member.
async fn change_roles(
    app: &App,
    caller: &TenantOwner,
    call: &Call,
    change: fn(&mut Vec<String>, &[String]),
) -> Result<Response> {
    let body: RoleIdsBody = call.json()?;
    let id = call.user_id()?;
    let tenant = caller.tenant_id();
    let patch = |stored: Option<User>| -> Result<User> {
        let user = stored.ok_or_else(|| Error::NotFound(format!("User {id} not found")))?;
        let mut draft = UserDraft::of(&user);
        let membership = draft
            .tenants
            .iter_mut()
            .find(|m| m.tenant_id == tenant.as_str())
            .ok_or_else(|| {
                Error::NotFound(format!("User {id} is not a member of tenant {tenant}"))
            })?;
        change(&mut membership.role_ids, &body.role_ids);
        Ok(User::try_from(draft)?)
    };
    let user = app.directory().patch_user(&id, patch).await?;
    json(StatusCode::OK, &user)
}

/// Frontegg's `POST /identity/resources/users/v1/{id}/roles` `{"roleIds"}` with
/// `frontegg-tenant-id`: the user also holds these roles in that tenant.
pub async fn assign_roles(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    change_roles(&app, &caller, &call, |held, added| {
        held.extend(
            added
                .iter()
                .filter(|r| !held.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
    })
    .await
}

/// Frontegg's `DELETE /identity/resources/users/v1/{id}/roles` `{"roleIds"}` with
/// `frontegg-tenant-id`: the user no longer holds these roles in that tenant.
pub async fn unassign_roles(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    change_roles(&app, &caller, &call, |held, removed| {
        held.retain(|r| !removed.contains(r));
    })
    .await
}
