//! The directory: permissions, roles, tenants and users with their memberships, written by
//! the API and by provisioning events alike. Deleting a tenant or a user deletes their tokens.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::directory::{EntityKind, Origin, Permission, Role, Tenant, User};
use crate::domain::{GrantId, TenantId, UserId};
use crate::error::{Error, Result};
use crate::ports::{DirectoryStore, TokenStore};

use super::check_ids_exist;

pub struct Directory<'a> {
    pub(crate) directory: &'a dyn DirectoryStore,
    pub(crate) tokens: &'a dyn TokenStore,
}

/// Every live document of a kind, read as `T`.
pub(super) async fn all<T: DeserializeOwned>(
    directory: &dyn DirectoryStore,
    kind: EntityKind,
) -> Result<Vec<T>> {
    directory
        .entities(kind)
        .await?
        .into_iter()
        .map(from_doc)
        .collect()
}

fn to_doc(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(Error::internal)
}

fn from_doc<T: DeserializeOwned>(doc: serde_json::Value) -> Result<T> {
    serde_json::from_value(doc).map_err(|e| Error::internal(format!("stored document: {e}")))
}

fn not_found(what: &str, id: &str) -> Error {
    Error::NotFound(format!("{what} {id} not found"))
}

impl Directory<'_> {
    pub async fn permissions(&self) -> Result<Vec<Permission>> {
        all(self.directory, EntityKind::Permission).await
    }

    pub async fn roles(&self) -> Result<Vec<Role>> {
        all(self.directory, EntityKind::Role).await
    }

    /// Creates or replaces a permission; a key held by another permission is a conflict.
    pub async fn put_permission(&self, permission: &Permission, origin: Origin) -> Result<bool> {
        if self
            .permissions()
            .await?
            .iter()
            .any(|p| p.key == permission.key && p.id != permission.id)
        {
            return Err(Error::Conflict(format!(
                "A permission with key {} exists",
                permission.key
            )));
        }
        let doc = to_doc(permission)?;
        self.directory
            .put_entity(EntityKind::Permission, permission.id.as_str(), &doc, origin)
            .await
    }

    /// Creates or replaces a role; every permission id must exist (400) and the key be free (409).
    pub async fn put_role(&self, role: &Role, origin: Origin) -> Result<bool> {
        if self
            .roles()
            .await?
            .iter()
            .any(|r| r.key == role.key && r.id != role.id)
        {
            return Err(Error::Conflict(format!(
                "A role with key {} exists",
                role.key
            )));
        }
        check_ids_exist(self.directory, EntityKind::Permission, &role.permission_ids).await?;
        let doc = to_doc(role)?;
        self.directory
            .put_entity(EntityKind::Role, role.id.as_str(), &doc, origin)
            .await
    }

    pub async fn role(&self, id: &str) -> Result<Role> {
        let doc = self.directory.entity(EntityKind::Role, id).await?;
        from_doc(doc.ok_or_else(|| not_found("Role", id))?)
    }

    /// Deletes a permission or role; it vanishes from every JWT issued afterwards.
    pub async fn delete_grant(&self, kind: EntityKind, id: &str, origin: Origin) -> Result<bool> {
        if origin == Origin::Api && self.directory.entity(kind, id).await?.is_none() {
            let what = if kind == EntityKind::Role {
                "Role"
            } else {
                "Permission"
            };
            return Err(not_found(what, id));
        }
        self.directory.delete_entity(kind, id, origin).await
    }

    pub async fn put_tenant(&self, tenant: &Tenant, origin: Origin) -> Result<bool> {
        let doc = to_doc(tenant)?;
        self.directory
            .put_entity(EntityKind::Tenant, tenant.id.as_str(), &doc, origin)
            .await
    }

    /// Deletes the tenant, its tokens (tenant tokens and members' personal tokens, with their
    /// refresh tokens) and its memberships. Safe to run again after an interruption.
    pub async fn delete_tenant(&self, id: &TenantId, origin: Origin) -> Result<bool> {
        if !self
            .directory
            .delete_entity(EntityKind::Tenant, id.as_str(), origin)
            .await?
        {
            return Ok(false);
        }
        let tokens = self.tokens.tokens_in_tenant(id).await?;
        let ids: Vec<_> = tokens.iter().map(|t| t.client_id).collect();
        self.tokens.delete_tokens(&ids).await?;
        self.directory.remove_members(id).await?;
        Ok(true)
    }

    /// Creates or replaces a user with their roles per tenant; unknown role ids are refused.
    pub async fn put_user(&self, user: &User, origin: Origin) -> Result<bool> {
        let role_ids: Vec<GrantId> = user
            .tenants
            .iter()
            .flat_map(|m| m.role_ids.clone())
            .collect();
        check_ids_exist(self.directory, EntityKind::Role, &role_ids).await?;
        self.directory.put_user(user, origin).await
    }

    /// Deletes the user and every personal token of theirs in every tenant. Safe to run again.
    pub async fn delete_user(&self, id: &UserId, origin: Origin) -> Result<bool> {
        if !self.directory.delete_user(id, origin).await? {
            return Ok(false);
        }
        let tokens = self.tokens.tokens_of_user(id).await?;
        let ids: Vec<_> = tokens.iter().map(|t| t.client_id).collect();
        self.tokens.delete_tokens(&ids).await?;
        Ok(true)
    }
}
