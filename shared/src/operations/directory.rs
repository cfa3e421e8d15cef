//! The directory's use cases, and the resolution of a token's roles and permissions at exchange.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::domain::directory::{EntityKind, Grants, Origin, Permission, Role, Tenant, User};
use crate::domain::{ApiToken, GrantId, TenantId, TokenOwner, UserId};
use crate::error::{Error, Result};

fn to_doc(value: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(Error::internal)
}

fn from_doc<T: DeserializeOwned>(doc: serde_json::Value) -> Result<T> {
    serde_json::from_value(doc).map_err(|e| Error::internal(format!("stored document: {e}")))
}

fn not_found(what: &str, id: &str) -> Error {
    Error::NotFound(format!("{what} {id} not found"))
}

impl App {
    async fn all<T: DeserializeOwned>(&self, kind: EntityKind) -> Result<Vec<T>> {
        self.directory
            .entities(kind)
            .await?
            .into_iter()
            .map(from_doc)
            .collect()
    }

    pub async fn permissions(&self) -> Result<Vec<Permission>> {
        self.all(EntityKind::Permission).await
    }

    pub async fn roles(&self) -> Result<Vec<Role>> {
        self.all(EntityKind::Role).await
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
        self.check_ids_exist(EntityKind::Permission, &role.permission_ids)
            .await?;
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

    /// Refuses ids that name no permission (or role): `400` with the unknown ones.
    pub async fn check_ids_exist(&self, kind: EntityKind, ids: &[GrantId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let known: Vec<String> = self
            .directory
            .entities(kind)
            .await?
            .into_iter()
            .filter_map(|doc| doc["id"].as_str().map(str::to_owned))
            .collect();
        let unknown: Vec<&str> = ids
            .iter()
            .map(GrantId::as_str)
            .filter(|id| !known.iter().any(|k| k == id))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            let what = if kind == EntityKind::Role {
                "roleIds"
            } else {
                "permissionIds"
            };
            Err(Error::bad_request(format!(
                "Unknown {what}: {}",
                unknown.join(", ")
            )))
        }
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
        self.check_ids_exist(EntityKind::Role, &role_ids).await?;
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

    /// The roles and permissions a token's JWT carries now, and the user's email for personal
    /// tokens. `None` when a personal token's user is no longer a member of its tenant.
    pub(crate) async fn current_grants(
        &self,
        token: &ApiToken,
    ) -> Result<Option<(Grants, Option<String>)>> {
        let (role_ids, direct, email) = match &token.owner {
            TokenOwner::Tenant => (token.role_ids.clone(), token.permission_ids.clone(), None),
            TokenOwner::User(user) => {
                let Some(user) = self.directory.user(user).await? else {
                    return Ok(None);
                };
                let Some(roles) = user.roles_in(&token.tenant_id) else {
                    return Ok(None);
                };
                (roles.to_vec(), Vec::new(), user.email.clone())
            }
        };
        if role_ids.is_empty() && direct.is_empty() {
            return Ok(Some((Grants::default(), email)));
        }
        let roles: HashMap<GrantId, Role> = self
            .roles()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let permissions: HashMap<GrantId, Permission> = self
            .permissions()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let held: Vec<&Role> = role_ids.iter().filter_map(|id| roles.get(id)).collect();
        let mut permission_keys: Vec<String> = held
            .iter()
            .flat_map(|role| &role.permission_ids)
            .chain(&direct)
            .filter_map(|id| permissions.get(id).map(|p| p.key.to_string()))
            .collect();
        permission_keys.sort();
        permission_keys.dedup();
        let grants = Grants {
            roles: held.iter().map(|r| r.key.to_string()).collect(),
            permissions: permission_keys,
        };
        Ok(Some((grants, email)))
    }
}
