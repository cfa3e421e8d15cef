//! The directory: permissions, roles, tenants and users, managed by the vendor. Bodies become
//! domain records through the same drafts as provisioning events.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::caller::{TenantOwner, Vendor};
use super::request::Call;
use super::response::{done, json, no_content};
use super::views::{
    Catalog, Grants, MembershipView, Page, PermissionView, RoleView, TenantView, UserView,
};
use crate::app::App;
use crate::domain::directory::{
    EntityKind, MembershipDraft, Origin, Permission, PermissionChange, PermissionDraft, Role,
    RoleChange, RoleDraft, TenantChange, User, UserChange, UserDraft,
};
use crate::domain::document::Stamped;
use crate::domain::lives::not_a_member;
use crate::domain::rules::{self, GrantKey};
use crate::domain::{GrantId, Metadata, TenantId, UserId};
use crate::error::{Error, Result};
use crate::operations::Window;

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
    category_id: Option<String>,
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

/// Refuses an id or a key given twice in one create (409, as one already taken), before
/// anything is written.
fn each_once<'g>(grants: impl Iterator<Item = (&'g GrantId, &'g GrantKey)>) -> Result<()> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (id, key) in grants {
        let twice = |what: &str, value: &str| {
            let value = rules::excerpt(value);
            Err(Error::Conflict(format!("{what} {value} is given twice")))
        };
        if seen.iter().any(|(i, _)| *i == id.as_str()) {
            return twice("id", id.as_str());
        }
        if seen.iter().any(|(_, k)| *k == key.as_str()) {
            return twice("key", key.as_str());
        }
        seen.push((id.as_str(), key.as_str()));
    }
    Ok(())
}

/// A change listing a tenant twice in `tenants` conflicts with itself (409), as an id given
/// twice in one create does.
fn each_tenant_once(change: &UserChange) -> Result<()> {
    let tenants = change.tenants.iter().flatten();
    let mut seen: Vec<&str> = Vec::new();
    for membership in tenants {
        let id = membership.tenant_id.as_str();
        if seen.contains(&id) {
            let id = rules::excerpt(id);
            return Err(Error::Conflict(format!("tenants: {id} is listed twice")));
        }
        seen.push(id);
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
                category_id: body.category_id,
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    each_once(permissions.iter().map(|p| (&p.id, &p.key)))?;
    let mut written = Vec::with_capacity(permissions.len());
    for permission in &permissions {
        let directory = app.directory().by(call.attribution());
        written.push(self::written(
            directory.put_permission(permission, Origin::Api).await?,
        )?);
    }
    let views: Vec<PermissionView<'_>> = written.iter().map(PermissionView::of).collect();
    created(&views, array)
}

/// `GET /identity/resources/permissions/v1`.
pub async fn list_permissions(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    let permissions = app.directory().permissions().await?;
    let views: Vec<PermissionView<'_>> = permissions.iter().map(PermissionView::of).collect();
    json(StatusCode::OK, &views)
}

/// `PATCH /identity/resources/permissions/v1/{id}`: absent fields stay as they are.
pub async fn patch_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let change: PermissionChange = call.json()?;
    let id = call.grant_id("Permission")?;
    let patch = |stored: Permission| Ok(change.apply(id.as_str(), Some(stored))?);
    let permission = app
        .directory()
        .by(call.attribution())
        .patch_permission(id.as_str(), patch)
        .await?;
    json(StatusCode::OK, &PermissionView::of(&permission))
}

/// `DELETE /identity/resources/permissions/v1/{id}`.
pub async fn delete_permission(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    app.directory()
        .by(call.attribution())
        .delete_grant(
            EntityKind::Permission,
            call.grant_id("Permission")?.as_str(),
            Origin::Api,
        )
        .await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleBody {
    id: Option<String>,
    key: Option<String>,
    name: Option<String>,
    permission_ids: Option<Vec<String>>,
    description: Option<String>,
    level: Option<serde_json::Number>,
    is_default: Option<bool>,
}

/// `POST /identity/resources/roles/v1`: one role, or Frontegg's array of them; with
/// `frontegg-tenant-id`, roles of that tenant only (Frontegg's tenant-specific roles; 404 when
/// it does not exist). Every item is checked before any is stored.
pub async fn create_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let tenant = call.tenant_header()?;
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
                description: body.description,
                level: body.level,
                is_default: body.is_default,
            })?)
        })
        .collect::<Result<Vec<_>>>()?;
    each_once(roles.iter().map(|r| (&r.id, &r.key)))?;
    let directory = app.directory().by(call.attribution());
    let mut written = Vec::with_capacity(roles.len());
    for role in roles {
        let role = match &tenant {
            Some(tenant) => directory.owned_by(role, tenant).await?,
            None => role,
        };
        written.push(self::written(
            directory.put_role(&role, Origin::Api).await?,
        )?);
    }
    let views: Vec<RoleView<'_>> = written.iter().map(RoleView::of).collect();
    created(&views, array)
}

/// `GET /identity/resources/roles/v1`: the vendor's roles; with `frontegg-tenant-id`, also
/// that tenant's own.
pub async fn list_roles(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let tenant = call.tenant_header()?;
    let roles = app
        .directory()
        .by(call.attribution())
        .roles_for(tenant.as_ref())
        .await?;
    json(
        StatusCode::OK,
        &roles.iter().map(RoleView::of).collect::<Vec<_>>(),
    )
}

/// `PATCH /identity/resources/roles/v1/{id}`: absent fields stay as they are.
pub async fn patch_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    change_role(&app, &call, call.json()?).await
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
    let change = RoleChange {
        permission_ids: Some(ids),
        ..RoleChange::default()
    };
    change_role(&app, &call, change).await
}

/// The role the path names, as the request may change it: with `frontegg-tenant-id`, only a
/// role of that tenant (404 otherwise).
async fn role_in_reach(app: &App, call: &Call) -> Result<GrantId> {
    let id = call.grant_id("Role")?;
    let tenant = call.tenant_header()?;
    app.directory()
        .by(call.attribution())
        .role_of(id.as_str(), tenant.as_ref())
        .await?;
    Ok(id)
}

/// Applies `change` to the role as read inside one conditional write.
async fn change_role(app: &App, call: &Call, change: RoleChange) -> Result<Response> {
    let id = role_in_reach(app, call).await?;
    let patch = |stored: Role| Ok(change.apply(id.as_str(), Some(stored))?);
    let role = app
        .directory()
        .by(call.attribution())
        .patch_role(id.as_str(), patch)
        .await?;
    json(StatusCode::OK, &RoleView::of(&role))
}

/// `DELETE /identity/resources/roles/v1/{id}`; with `frontegg-tenant-id`, only a role of that
/// tenant.
pub async fn delete_role(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = role_in_reach(&app, &call).await?;
    app.directory()
        .by(call.attribution())
        .delete_grant(EntityKind::Role, id.as_str(), Origin::Api)
        .await?;
    no_content()
}

/// Writes the change a `PUT` of a tenant says (fields absent stay), creating the tenant if
/// need be.
async fn change_tenant(
    app: &App,
    call: &Call,
) -> Result<Stamped<crate::domain::directory::Tenant>> {
    let change: TenantChange = call.json()?;
    let id = call.tenant_id()?;
    written(
        app.directory()
            .by(call.attribution())
            .upsert_tenant(&id, &change, Origin::Api)
            .await?,
    )
}

/// `PUT /identity/resources/tenants/v1/{id}`: our own alias, answering the metadata as an
/// object.
pub async fn put_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let tenant = change_tenant(&app, &call).await?;
    json(StatusCode::OK, &TenantView::ours(&tenant))
}

/// Frontegg's `PUT /tenants/resources/tenants/v1/{id}`.
pub async fn put_frontegg_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let tenant = change_tenant(&app, &call).await?;
    json(StatusCode::OK, &TenantView::frontegg(&tenant))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTenantBody {
    tenant_id: Option<String>,
    name: Option<String>,
    metadata: Option<Metadata>,
    creator_name: Option<String>,
    creator_email: Option<String>,
}

/// Frontegg's `POST /tenants/resources/tenants/v1` `{tenantId, name, metadata, creatorName,
/// creatorEmail}`: a generated id unless one is given; 409 if the id is taken.
pub async fn create_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: NewTenantBody = call.json()?;
    let id = body.tenant_id.unwrap_or_else(new_id);
    let id = rules::field("tenantId", TenantId::parse(&id))?;
    let change = TenantChange {
        name: body.name,
        metadata: body.metadata,
        creator_name: body.creator_name,
        creator_email: body.creator_email,
    };
    let tenant = app
        .directory()
        .by(call.attribution())
        .create_tenant(&id, &change)
        .await?;
    json(StatusCode::CREATED, &TenantView::frontegg(&tenant))
}

/// Frontegg's `GET /tenants/resources/tenants/v1`: every tenant, by id.
pub async fn list_tenants(app: Arc<App>, _: Vendor, _: Call) -> Result<Response> {
    let tenants = app.directory().tenants().await?;
    let views: Vec<TenantView<'_>> = tenants.iter().map(TenantView::frontegg).collect();
    json(StatusCode::OK, &views)
}

/// Frontegg's `GET /tenants/resources/tenants/v1/{id}`: as Frontegg, an array holding the
/// tenant, empty when there is none.
pub async fn get_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = call.tenant_id()?;
    let tenant = app.directory().by(call.attribution()).tenant(&id).await?;
    let found: Vec<TenantView<'_>> = tenant.iter().map(TenantView::frontegg).collect();
    json(StatusCode::OK, &found)
}

#[derive(Deserialize)]
struct MetadataBody {
    metadata: Metadata,
}

/// Frontegg's `POST /tenants/resources/tenants/v1/{id}/metadata` `{"metadata": {...}}`: the
/// keys given are set, the others stay; 404 when there is no such tenant. A key that no
/// `DELETE …/metadata/{key}` could name (empty, `.` or `..`) is refused.
pub async fn set_tenant_metadata(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let body: MetadataBody = call.json()?;
    if let Some(key) = body
        .metadata
        .keys()
        .find(|k| matches!(k.as_str(), "" | "." | ".."))
    {
        return Err(Error::bad_request(format!(
            "metadata: the key {key:?} could not be deleted by its path; use another"
        )));
    }
    change_metadata(&app, &call, |metadata| {
        metadata.extend(body.metadata.clone());
    })
    .await
}

/// Frontegg's `DELETE /tenants/resources/tenants/v1/{id}/metadata/{key}`: the key is removed
/// (nothing changes when it is absent); 404 when there is no such tenant.
pub async fn delete_tenant_metadata(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    change_metadata(&app, &call, |metadata| {
        metadata.remove(call.key());
    })
    .await
}

/// Changes the tenant's metadata as stored when the write lands, within the usual bounds.
async fn change_metadata(
    app: &App,
    call: &Call,
    change: impl Fn(&mut Metadata),
) -> Result<Response> {
    let id = call.tenant_id()?;
    let patch = |stored: crate::domain::directory::Tenant| {
        let mut metadata = stored.metadata.clone();
        change(&mut metadata);
        let change = TenantChange {
            metadata: Some(metadata),
            ..TenantChange::default()
        };
        Ok(change.apply(id.as_str(), Some(stored))?)
    };
    let tenant = app
        .directory()
        .by(call.attribution())
        .patch_tenant(&id, patch)
        .await?;
    json(StatusCode::OK, &TenantView::frontegg(&tenant))
}

/// `DELETE /identity/resources/tenants/v1/{id}` (our alias; answers `{}`) and Frontegg's
/// `DELETE /tenants/resources/tenants/v1/{id}` (answers 204): its tokens and memberships go
/// with it.
async fn remove_tenant(app: &App, call: &Call) -> Result<()> {
    let id = call.tenant_id()?;
    app.directory()
        .by(call.attribution())
        .delete_tenant(&id, Origin::Api)
        .await?;
    Ok(())
}

pub async fn delete_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    remove_tenant(&app, &call).await?;
    done()
}

pub async fn delete_frontegg_tenant(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    remove_tenant(&app, &call).await?;
    no_content()
}

/// `PUT /identity/resources/users/v1/{id}`: a partial update, as Frontegg's: only the fields
/// present change, and memberships only when `tenants` is present. A new id creates the user.
pub async fn put_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let change: UserChange = call.json()?;
    each_tenant_once(&change)?;
    let id = call.user_id()?;
    let directory = app.directory().by(call.attribution());
    let user = written(directory.upsert_user(&id, &change, Origin::Api).await?)?;
    json(StatusCode::OK, &user.doc)
}

/// `DELETE /identity/resources/users/v1/{id}`: with `frontegg-tenant-id`, removes the user from
/// that tenant only (and their personal tokens there), as Frontegg's does; without it, deletes
/// the user and every personal token of theirs.
pub async fn delete_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let id = call.user_id()?;
    match call.tenant_header()? {
        Some(tenant) => {
            app.directory()
                .by(call.attribution())
                .remove_member(&id, &tenant)
                .await?;
        }
        None => {
            app.directory()
                .by(call.attribution())
                .delete_user(&id, Origin::Api)
                .await?;
        }
    }
    no_content()
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
    role_ids: Option<Vec<String>>,
}

/// Frontegg's `POST /identity/resources/users/v1` and `v2` with `frontegg-tenant-id`: a user
/// created in that tenant with `roleIds` (without them, the default roles), under a generated
/// id unless one is given; 409 if the id is taken. Answers the user with the roles and
/// permissions they hold there.
pub async fn create_user(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    let body: NewUserBody = call.json()?;
    let directory = app.directory().by(call.attribution());
    let role_ids = match body.role_ids.clone() {
        Some(ids) => ids,
        None => directory
            .roles_for(Some(caller.tenant_id()))
            .await?
            .iter()
            .filter(|role| role.is_default)
            .map(|role| role.id.to_string())
            .collect(),
    };
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
            role_ids: role_ids.clone(),
        }],
    };
    let patch = |stored: Option<User>| -> Result<User> {
        if stored.is_some() {
            return Err(Error::Conflict(format!("User {id} exists")));
        }
        Ok(User::try_from(draft())?)
    };
    let user = directory.patch_user(&id, patch).await?;
    let grants = grants(&app, [&user.doc]).await?;
    let view = UserView::of(&user, Some(caller.tenant_id()), &Catalog::of(&grants));
    json(StatusCode::CREATED, &view)
}

/// The roles `users` hold and their permissions, to answer with the users' grants.
async fn grants<'u>(app: &App, users: impl IntoIterator<Item = &'u User>) -> Result<Grants> {
    let held: Vec<&GrantId> = users
        .into_iter()
        .flat_map(|u| &u.tenants)
        .flat_map(|m| &m.role_ids)
        .collect();
    app.directory().held_grants(&held).await
}

/// Frontegg's `GET /identity/resources/users/v1/{id}`: the user, with their roles in each
/// tenant; with `frontegg-tenant-id`, only while they are a member of it (404 otherwise).
pub async fn get_user(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let tenant = call.tenant_header()?;
    answer_user(&app, &call, tenant.as_ref()).await
}

/// Frontegg's `GET /identity/resources/vendor-only/users/v1/{id}`: the user, whatever tenant.
pub async fn get_user_as_vendor(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    answer_user(&app, &call, None).await
}

async fn answer_user(app: &App, call: &Call, tenant: Option<&TenantId>) -> Result<Response> {
    let id = call.user_id()?;
    let directory = app.directory().by(call.attribution());
    let user = directory.user(&id).await?;
    let user = user
        .filter(|u| tenant.is_none_or(|t| u.roles_in(t).is_some()))
        .ok_or_else(|| Error::not_found("User", id.as_str()))?;
    let grants = grants(app, [&user.doc]).await?;
    let catalog = Catalog::of(&grants);
    json(StatusCode::OK, &UserView::of(&user, tenant, &catalog))
}

/// Largest page of Frontegg's `_limit`.
const MAX_PAGE: u64 = 200;

/// The page a Frontegg list asks for: `_offset` counts pages of `_limit` (default 50, at most
/// 200).
fn window(call: &Call) -> Result<Window> {
    let limit = call.query_number("_limit", 50, 1..=MAX_PAGE)?;
    let page = call.query_number("_offset", 0, 0..=u64::from(u32::MAX))?;
    Ok(Window {
        page,
        limit: usize::try_from(limit).unwrap_or(1),
    })
}

/// Frontegg's `GET /tenants/resources/tenants/v2?_limit&_offset`: a page of tenants by id, as
/// `{items, _metadata: {totalItems, totalPages}}`.
pub async fn list_tenant_page(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let window = window(&call)?;
    let tenants = app
        .directory()
        .by(call.attribution())
        .page(EntityKind::Tenant, window)
        .await?;
    json(
        StatusCode::OK,
        &Page::of(&tenants, window, TenantView::frontegg),
    )
}

/// Frontegg's `GET /identity/resources/users/v1?_limit&_offset`: a page of users by id (with
/// `frontegg-tenant-id`, of that tenant's members), as `{items, _metadata: {totalItems,
/// totalPages}}`.
pub async fn list_users(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let window = window(&call)?;
    let tenant = call.tenant_header()?;
    let directory = app.directory().by(call.attribution());
    let users = async {
        match &tenant {
            Some(tenant) => directory.members(tenant, window).await,
            None => directory.page(EntityKind::User, window).await,
        }
    };
    let users = users.await?;
    let grants = grants(&app, users.items.iter().map(|u| &u.doc)).await?;
    let catalog = Catalog::of(&grants);
    let page = Page::of(&users, window, |user| {
        UserView::of(user, tenant.as_ref(), &catalog)
    });
    json(StatusCode::OK, &page)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleIdsBody {
    role_ids: Vec<String>,
}

/// Changes the roles the user holds in the caller's tenant, answering that membership as
/// Frontegg does (`{tenantId, roles, ...}`); 404 when the user is not a member.
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
        let user = stored.ok_or_else(|| Error::not_found("User", id.as_str()))?;
        let mut draft = UserDraft::of(&user);
        let membership = draft
            .tenants
            .iter_mut()
            .find(|m| m.tenant_id == tenant.as_str())
            .ok_or_else(|| Error::NotFound(not_a_member(&id, tenant)))?;
        change(&mut membership.role_ids, &body.role_ids);
        Ok(User::try_from(draft)?)
    };
    let user = app
        .directory()
        .by(call.attribution())
        .patch_user(&id, patch)
        .await?;
    let grants = grants(app, [&user.doc]).await?;
    let membership = user.tenants.iter().find(|m| &m.tenant_id == tenant);
    let membership = membership.ok_or_else(|| Error::NotFound(not_a_member(&id, tenant)))?;
    json(
        StatusCode::OK,
        &MembershipView::of(membership, &Catalog::of(&grants)),
    )
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
