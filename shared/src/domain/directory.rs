//! The directory: permissions, roles, tenants and users with their roles per tenant. It decides
//! what an API token's JWT says at the moment of exchange.

use serde::{Deserialize, Serialize};

use super::ids::{GrantId, TenantId, UserId};
use super::token::Metadata;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub id: GrantId,
    pub key: String,
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: GrantId,
    pub key: String,
    pub name: String,
    pub permission_ids: Vec<GrantId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub metadata: Metadata,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub tenant_id: TenantId,
    pub role_ids: Vec<GrantId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub tenants: Vec<Membership>,
}

impl User {
    pub fn roles_in(&self, tenant: &TenantId) -> Option<&[GrantId]> {
        self.tenants
            .iter()
            .find(|m| &m.tenant_id == tenant)
            .map(|m| m.role_ids.as_slice())
    }
}

/// Which directory record a write or a delete is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Permission,
    Role,
    Tenant,
    User,
}

/// Orders writes that arrive as events: a write carrying an older version than the stored one
/// is ignored. API writes carry none and always apply.
pub type Version = Option<u64>;

/// What a role-and-permission lookup yields for a JWT: keys, not ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}
