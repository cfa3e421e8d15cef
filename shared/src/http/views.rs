//! Directory records as answered: every field of Frontegg's answers, so that its typed clients
//! parse them. Fields we have no meaning for are constant (`deletedAt: null`,
//! `isReseller: false`, `fePermission: false`, `tenantId: null` on a role), as the book's
//! Frontegg page lists them.

use serde::Serialize;
use serde_json::Value;

use crate::domain::directory::{Membership, Permission, Role, Tenant, User};
use crate::domain::document::Stamped;
use crate::domain::rules::GrantKey;
use crate::domain::{GrantId, Metadata, TenantId, UserId};
use crate::operations::{Listing, Window};

/// Frontegg answers metadata as a string holding a JSON object.
fn metadata_text(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionView<'p> {
    id: &'p GrantId,
    key: &'p GrantKey,
    name: &'p str,
    description: &'p str,
    /// Empty when none was given.
    category_id: &'p str,
    fe_permission: bool,
    created_at: String,
    updated_at: String,
}

impl<'p> PermissionView<'p> {
    pub fn of(permission: &'p Stamped<Permission>) -> Self {
        Self {
            id: &permission.id,
            key: &permission.key,
            name: &permission.name,
            description: &permission.description,
            category_id: permission.category_id.as_ref().map_or("", GrantId::as_str),
            fe_permission: false,
            created_at: permission.created.iso8601(),
            updated_at: permission.updated.iso8601(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleView<'r> {
    id: &'r GrantId,
    key: &'r GrantKey,
    name: &'r str,
    description: &'r str,
    level: i64,
    is_default: bool,
    /// Ours; Frontegg's `permissions` holds the same ids.
    permission_ids: &'r [GrantId],
    permissions: &'r [GrantId],
    /// The tenant of a tenant-specific role; `null` for the vendor's roles, for every tenant.
    tenant_id: Option<&'r TenantId>,
    created_at: String,
    updated_at: String,
}

impl<'r> RoleView<'r> {
    pub fn of(role: &'r Stamped<Role>) -> Self {
        Self {
            id: &role.id,
            key: &role.key,
            name: &role.name,
            description: &role.description,
            level: role.level,
            is_default: role.is_default,
            permission_ids: &role.permission_ids,
            permissions: &role.permission_ids,
            tenant_id: role.tenant_id.as_ref(),
            created_at: role.created.iso8601(),
            updated_at: role.updated.iso8601(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantView<'t> {
    id: &'t TenantId,
    tenant_id: &'t TenantId,
    name: &'t str,
    /// A string holding the object on Frontegg's paths, the object itself on ours.
    metadata: Value,
    creator_name: Option<&'t str>,
    creator_email: Option<&'t str>,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    is_reseller: bool,
}

impl<'t> TenantView<'t> {
    /// As Frontegg's tenants API answers it.
    pub fn frontegg(tenant: &'t Stamped<Tenant>) -> Self {
        Self::with_metadata(tenant, Value::String(metadata_text(&tenant.metadata)))
    }

    /// As our own `/identity/resources/tenants/v1/{id}` answers it: the metadata an object.
    pub fn ours(tenant: &'t Stamped<Tenant>) -> Self {
        Self::with_metadata(tenant, Value::Object(tenant.metadata.clone()))
    }

    fn with_metadata(tenant: &'t Stamped<Tenant>, metadata: Value) -> Self {
        Self {
            id: &tenant.id,
            tenant_id: &tenant.id,
            name: &tenant.name,
            metadata,
            creator_name: tenant.creator_name.as_deref(),
            creator_email: tenant.creator_email.as_deref(),
            created_at: tenant.created.iso8601(),
            updated_at: tenant.updated.iso8601(),
            deleted_at: None,
            is_reseller: false,
        }
    }
}

/// Every role and permission of the directory, as [`Catalog`] looks users' grants up in.
pub type Grants = (Vec<Stamped<Role>>, Vec<Stamped<Permission>>);

/// The roles and permissions a user's memberships name, looked up in the directory.
pub struct Catalog<'g> {
    roles: &'g [Stamped<Role>],
    permissions: &'g [Stamped<Permission>],
}

impl<'g> Catalog<'g> {
    pub fn of((roles, permissions): &'g Grants) -> Self {
        Self { roles, permissions }
    }

    /// The roles of `ids` that exist, in the order given.
    fn roles(&self, ids: &[GrantId]) -> Vec<RoleView<'g>> {
        ids.iter()
            .filter_map(|id| self.roles.iter().find(|r| &r.id == id))
            .map(RoleView::of)
            .collect()
    }

    /// The permissions the roles of `ids` grant, each once.
    fn permissions(&self, ids: &[GrantId]) -> Vec<PermissionView<'g>> {
        let roles = ids
            .iter()
            .filter_map(|id| self.roles.iter().find(|r| &r.id == id));
        let mut granted: Vec<&GrantId> = Vec::new();
        for id in roles.flat_map(|r| r.permission_ids.iter()) {
            if !granted.contains(&id) {
                granted.push(id);
            }
        }
        granted
            .into_iter()
            .filter_map(|id| self.permissions.iter().find(|p| &p.id == id))
            .map(PermissionView::of)
            .collect()
    }
}

/// A membership as Frontegg answers it (in a user's `tenants`, and for a role assignment).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipView<'m> {
    tenant_id: &'m TenantId,
    roles: Vec<RoleView<'m>>,
    /// Memberships do not expire or get disabled here.
    temporary_expiration_date: Option<String>,
    is_disabled: bool,
}

impl<'m> MembershipView<'m> {
    pub fn of(membership: &'m Membership, catalog: &Catalog<'m>) -> Self {
        Self {
            tenant_id: &membership.tenant_id,
            roles: catalog.roles(&membership.role_ids),
            temporary_expiration_date: None,
            is_disabled: false,
        }
    }
}

/// The memberships an answer shows: every one, or only the one in `tenant` when the read is
/// scoped to it (it shows nothing of the user's other tenants).
fn shown<'u>(user: &'u User, tenant: Option<&TenantId>) -> Vec<&'u Membership> {
    let in_scope = |m: &&Membership| tenant.is_none_or(|t| &m.tenant_id == t);
    user.tenants.iter().filter(in_scope).collect()
}

/// A user as Frontegg's users API answers: the roles and permissions they hold in their
/// first tenant shown (Frontegg's active tenant), and each membership with its roles; read
/// within a tenant (or as created in one), that membership only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView<'u> {
    id: &'u UserId,
    /// Frontegg's name for the id in its JWTs: the same id.
    sub: &'u UserId,
    /// Empty when the directory has none.
    email: &'u str,
    name: &'u str,
    metadata: String,
    tenant_id: Option<&'u TenantId>,
    tenant_ids: Vec<&'u TenantId>,
    roles: Vec<RoleView<'u>>,
    permissions: Vec<PermissionView<'u>>,
    tenants: Vec<MembershipView<'u>>,
    verified: bool,
    created_at: String,
    updated_at: String,
}

impl<'u> UserView<'u> {
    pub fn of(user: &'u Stamped<User>, tenant: Option<&TenantId>, catalog: &Catalog<'u>) -> Self {
        let shown = shown(user, tenant);
        let active = shown.first().map_or(&[][..], |m| m.role_ids.as_slice());
        Self {
            id: &user.id,
            sub: &user.id,
            email: user.email.as_deref().unwrap_or_default(),
            name: user.name.as_deref().unwrap_or_default(),
            metadata: metadata_text(&user.metadata),
            tenant_id: shown.first().map(|m| &m.tenant_id),
            tenant_ids: shown.iter().map(|m| &m.tenant_id).collect(),
            roles: catalog.roles(active),
            permissions: catalog.permissions(active),
            tenants: shown
                .iter()
                .map(|m| MembershipView::of(m, catalog))
                .collect(),
            verified: true,
            created_at: user.created.iso8601(),
            updated_at: user.updated.iso8601(),
        }
    }
}

/// A page of Frontegg's paginated lists: `_offset` counts pages of `_limit` items.
#[derive(Serialize)]
pub struct Page<T> {
    items: Vec<T>,
    #[serde(rename = "_metadata")]
    metadata: PageMetadata,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageMetadata {
    total_items: usize,
    total_pages: usize,
}

impl<T> Page<T> {
    /// The page `listing` holds, as `view` shows each record.
    pub fn of<'a, A>(
        listing: &'a Listing<A>,
        window: Window,
        view: impl Fn(&'a Stamped<A>) -> T,
    ) -> Self {
        let total = usize::try_from(listing.total).unwrap_or(usize::MAX);
        Self {
            items: listing.items.iter().map(view).collect(),
            metadata: PageMetadata {
                total_items: total,
                total_pages: total.div_ceil(window.limit.max(1)),
            },
        }
    }
}
