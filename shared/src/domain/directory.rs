//! The directory: permissions, roles, tenants and users with their roles per tenant. It decides
//! what an API token's JWT says at the moment of exchange.
//!
//! Every record is made from a draft with `TryFrom`, by the API and by provisioning events
//! alike, so an event can never store what the API refuses.

use serde::{Deserialize, Serialize};

use super::ids::{GrantId, TenantId, UserId};
use super::lives::Life;
pub use super::lives::Origin;
use super::rules::{self, GrantKey, Invalid};
use super::token::Metadata;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub id: GrantId,
    pub key: GrantKey,
    pub name: String,
    pub description: String,
    /// Frontegg's permission category: kept and answered, it groups nothing here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<GrantId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: GrantId,
    pub key: GrantKey,
    pub name: String,
    pub permission_ids: Vec<GrantId>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Frontegg's role level: kept and answered, it orders nothing here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub level: i64,
    /// Given to a user created in a tenant without `roleIds`, as Frontegg's default roles.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_default: bool,
    /// The tenant the role belongs to (Frontegg's tenant-specific roles); `None`: a role of the
    /// vendor's, for every tenant. Set at creation, never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// The life of that tenant the role was created in: the role ends with it, so a tenant
    /// created again under the same id inherits none of the old one's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_life: Option<Life>,
}

impl Role {
    /// Whether the role may be held in `tenant`, whose live record has `life` (`None`: the
    /// tenant does not live): a role of every tenant's, or one of this tenant's current life.
    pub fn applies_in(&self, tenant: &TenantId, life: Option<&Life>) -> bool {
        match &self.tenant_id {
            None => true,
            Some(own) => own == tenant && life.is_some() && self.tenant_life.as_ref() == life,
        }
    }

    /// Whether the role is listed among a tenant's roles, or, for `None`, among the vendor's.
    pub fn listed_for(&self, tenant: Option<(&TenantId, Option<&Life>)>) -> bool {
        match tenant {
            None => self.tenant_id.is_none(),
            Some((id, life)) => self.applies_in(id, life),
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub metadata: Metadata,
    /// Who created it, as Frontegg's create names them; kept and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_email: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    pub tenants: Vec<Membership>,
}

impl User {
    /// What people call the user: their name, else their email; `None` when neither is known.
    pub fn display_name(&self) -> Option<&str> {
        fn known(text: Option<&str>) -> Option<&str> {
            text.filter(|t| !t.trim().is_empty())
        }
        known(self.name.as_deref()).or_else(|| known(self.email.as_deref()))
    }

    pub fn roles_in(&self, tenant: &TenantId) -> Option<&[GrantId]> {
        self.tenants
            .iter()
            .find(|m| &m.tenant_id == tenant)
            .map(|m| m.role_ids.as_slice())
    }
}

/// A permission as a caller describes it.
pub struct PermissionDraft {
    pub id: String,
    pub key: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<String>,
}

impl TryFrom<PermissionDraft> for Permission {
    type Error = Invalid;

    fn try_from(draft: PermissionDraft) -> Result<Self, Invalid> {
        Ok(Self {
            id: rules::field("id", GrantId::parse(&draft.id))?,
            key: GrantKey::parse(draft.key)?,
            name: rules::name(draft.name.unwrap_or_default())?,
            description: rules::description(draft.description.unwrap_or_default())?,
            category_id: draft
                .category_id
                .map(|id| rules::field("categoryId", GrantId::parse(&id)))
                .transpose()?,
        })
    }
}

/// A role as a caller describes it.
pub struct RoleDraft {
    pub id: String,
    pub key: String,
    pub name: Option<String>,
    pub permission_ids: Vec<String>,
    pub description: Option<String>,
    pub level: Option<serde_json::Number>,
    pub is_default: Option<bool>,
}

impl TryFrom<RoleDraft> for Role {
    type Error = Invalid;

    fn try_from(draft: RoleDraft) -> Result<Self, Invalid> {
        Ok(Self {
            id: rules::field("id", GrantId::parse(&draft.id))?,
            key: GrantKey::parse(draft.key)?,
            name: rules::name(draft.name.unwrap_or_default())?,
            permission_ids: rules::grant_ids("permissionIds", &draft.permission_ids)?,
            description: rules::description(draft.description.unwrap_or_default())?,
            level: rules::level(draft.level.as_ref())?,
            is_default: draft.is_default.unwrap_or_default(),
            tenant_id: None,
            tenant_life: None,
        })
    }
}

/// A tenant as a caller describes it.
pub struct TenantDraft {
    pub id: String,
    pub name: Option<String>,
    pub metadata: Option<Metadata>,
    pub creator_name: Option<String>,
    pub creator_email: Option<String>,
}

impl TryFrom<TenantDraft> for Tenant {
    type Error = Invalid;

    fn try_from(draft: TenantDraft) -> Result<Self, Invalid> {
        Ok(Self {
            id: rules::field("tenantId", TenantId::parse(&draft.id))?,
            name: rules::name(draft.name.unwrap_or_default())?,
            metadata: rules::metadata(draft.metadata.unwrap_or_default())?,
            creator_name: draft.creator_name.map(rules::name).transpose()?,
            creator_email: draft.creator_email.map(rules::email).transpose()?,
        })
    }
}

/// A membership as a caller describes it (the same shape in API bodies and events).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipDraft {
    pub tenant_id: String,
    #[serde(default)]
    pub role_ids: Vec<String>,
}

impl From<&Membership> for MembershipDraft {
    fn from(m: &Membership) -> Self {
        Self {
            tenant_id: m.tenant_id.to_string(),
            role_ids: m.role_ids.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A user as a caller describes it.
pub struct UserDraft {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: Option<Metadata>,
    pub tenants: Vec<MembershipDraft>,
}

impl UserDraft {
    /// `user` as a draft, to change some of its fields.
    pub fn of(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.clone(),
            name: user.name.clone(),
            metadata: Some(user.metadata.clone()),
            tenants: user.tenants.iter().map(MembershipDraft::from).collect(),
        }
    }
}

impl TryFrom<UserDraft> for User {
    type Error = Invalid;

    fn try_from(draft: UserDraft) -> Result<Self, Invalid> {
        if draft.tenants.len() > rules::MAX_TENANTS_PER_USER {
            return Err(Invalid(format!(
                "tenants may hold at most {} memberships",
                rules::MAX_TENANTS_PER_USER
            )));
        }
        let mut tenants: Vec<Membership> = Vec::with_capacity(draft.tenants.len());
        for m in draft.tenants {
            let tenant_id = rules::field("tenants: tenantId", TenantId::parse(&m.tenant_id))?;
            if tenants.iter().any(|t| t.tenant_id == tenant_id) {
                let tenant_id = rules::excerpt(tenant_id.as_str());
                return Err(Invalid(format!("tenants: {tenant_id} is listed twice")));
            }
            let role_ids = rules::grant_ids("roleIds", &m.role_ids)?;
            tenants.push(Membership {
                tenant_id,
                role_ids,
            });
        }
        let role_ids: usize = tenants.iter().map(|m| m.role_ids.len()).sum();
        if role_ids > rules::MAX_ROLE_IDS_PER_USER {
            return Err(Invalid(format!(
                "tenants may hold at most {} roleIds in all",
                rules::MAX_ROLE_IDS_PER_USER
            )));
        }
        Ok(Self {
            id: rules::field("userId", UserId::parse(&draft.id))?,
            email: draft.email.map(rules::email).transpose()?,
            name: draft.name.map(rules::name).transpose()?,
            metadata: rules::metadata(draft.metadata.unwrap_or_default())?,
            tenants,
        })
    }
}

/// A user's `metadata` as an object, or as Frontegg sends it: a string holding a JSON object.
pub fn user_metadata<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Metadata>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Object(Metadata),
        Text(String),
    }
    match Option::<Given>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Given::Object(metadata)) => Ok(Some(metadata)),
        Some(Given::Text(text)) if text.trim().is_empty() => Ok(Some(Metadata::new())),
        Some(Given::Text(text)) => serde_json::from_str(&text).map(Some).map_err(|_| {
            serde::de::Error::custom("metadata must be a JSON object, or a string holding one")
        }),
    }
}

// Changes: what an update says, by the API's `PUT`/`PATCH` and by an `*.upserted` event alike.
// Each field absent stays as stored; a record made by a change takes the defaults.

/// A change to a permission; a new one's key defaults to its id.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionChange {
    pub key: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<String>,
}

impl PermissionChange {
    pub fn apply(&self, id: &str, stored: Option<Permission>) -> Result<Permission, Invalid> {
        let category = stored.as_ref().and_then(|p| p.category_id.as_ref());
        let category = category.map(ToString::to_string);
        let stored = stored.map(|p| (p.key.to_string(), p.name, p.description));
        let (key, name, description) = stored.unzip3();
        Permission::try_from(PermissionDraft {
            id: id.to_owned(),
            key: self.key.clone().or(key).unwrap_or_else(|| id.to_owned()),
            name: self.name.clone().or(name),
            description: self.description.clone().or(description),
            category_id: self.category_id.clone().or(category),
        })
    }
}

/// A change to a role; a new one's key defaults to its id.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleChange {
    pub key: Option<String>,
    pub name: Option<String>,
    pub permission_ids: Option<Vec<String>>,
    pub description: Option<String>,
    pub level: Option<serde_json::Number>,
    pub is_default: Option<bool>,
}

impl RoleChange {
    pub fn apply(&self, id: &str, stored: Option<Role>) -> Result<Role, Invalid> {
        let extra = stored
            .as_ref()
            .map(|r| (r.description.clone(), r.level, r.is_default));
        let (description, level, is_default) = extra.unzip3();
        let owner = stored
            .as_ref()
            .map(|r| (r.tenant_id.clone(), r.tenant_life.clone()));
        let stored = stored.map(|r| {
            let ids = r.permission_ids.iter().map(ToString::to_string).collect();
            (r.key.to_string(), r.name, ids)
        });
        let (key, name, permission_ids) = stored.unzip3();
        let role = Role::try_from(RoleDraft {
            id: id.to_owned(),
            key: self.key.clone().or(key).unwrap_or_else(|| id.to_owned()),
            name: self.name.clone().or(name),
            permission_ids: self
                .permission_ids
                .clone()
                .or(permission_ids)
                .unwrap_or_default(),
            description: self.description.clone().or(description),
            level: self.level.clone().or(level.map(serde_json::Number::from)),
            is_default: self.is_default.or(is_default),
        })?;
        let (tenant_id, tenant_life) = owner.unwrap_or_default();
        Ok(Role {
            tenant_id,
            tenant_life,
            ..role
        })
    }
}

/// A change to a tenant.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantChange {
    pub name: Option<String>,
    pub metadata: Option<Metadata>,
    pub creator_name: Option<String>,
    pub creator_email: Option<String>,
}

impl TenantChange {
    pub fn apply(&self, id: &str, stored: Option<Tenant>) -> Result<Tenant, Invalid> {
        let creator = stored
            .as_ref()
            .map(|t| (t.creator_name.clone(), t.creator_email.clone()));
        let (creator_name, creator_email) = creator.unzip();
        let (name, metadata) = stored.map(|t| (t.name, t.metadata)).unzip();
        Tenant::try_from(TenantDraft {
            id: id.to_owned(),
            name: self.name.clone().or(name),
            metadata: self.metadata.clone().or(metadata),
            creator_name: self.creator_name.clone().or(creator_name.flatten()),
            creator_email: self.creator_email.clone().or(creator_email.flatten()),
        })
    }
}

/// A change to a user: Frontegg's fields we keep, plus our `tenants` (memberships change only
/// when it is present).
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChange {
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "user_metadata")]
    pub metadata: Option<Metadata>,
    pub tenants: Option<Vec<MembershipDraft>>,
}

impl UserChange {
    pub fn apply(&self, id: &str, stored: Option<&User>) -> Result<User, Invalid> {
        let mut draft = stored.map_or_else(
            || UserDraft {
                id: id.to_owned(),
                email: None,
                name: None,
                metadata: None,
                tenants: Vec::new(),
            },
            UserDraft::of,
        );
        draft.email = self.email.clone().or(draft.email);
        draft.name = self.name.clone().or(draft.name);
        draft.metadata = self.metadata.clone().or(draft.metadata);
        if let Some(tenants) = &self.tenants {
            draft.tenants = tenants.clone();
        }
        User::try_from(draft)
    }
}

/// `Option<(A, B, C)>` into three options.
trait Unzip3<A, B, C> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>);
}

impl<A, B, C> Unzip3<A, B, C> for Option<(A, B, C)> {
    fn unzip3(self) -> (Option<A>, Option<B>, Option<C>) {
        match self {
            Some((a, b, c)) => (Some(a), Some(b), Some(c)),
            None => (None, None, None),
        }
    }
}

/// Where a role's or permission's key must be unique, as its write claims it (in the same
/// atomic write): a permission's and a vendor's role's among all of their kind; a tenant's
/// role's among the vendor's roles and that tenant's own (two tenants' roles may share a key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyClaim {
    pub kind: EntityKind,
    pub key: GrantKey,
    /// `None`: the vendor's, for every tenant; else the tenant's own.
    pub tenant: Option<TenantId>,
}

impl KeyClaim {
    /// Whether this claim may be taken beside the claims `held` of the same key (`None`: the
    /// vendor's): the vendor's only alone, a tenant's beside other tenants' only.
    pub fn fits_beside(&self, held: &[Option<TenantId>]) -> bool {
        match &self.tenant {
            None => held.is_empty(),
            Some(tenant) => !held
                .iter()
                .any(|h| h.is_none() || h.as_ref() == Some(tenant)),
        }
    }

    /// The 409 a taken key answers.
    pub fn taken(&self) -> String {
        let what = if self.kind == EntityKind::Role {
            "role"
        } else {
            "permission"
        };
        format!(
            "A {what} with key {} exists",
            rules::excerpt(self.key.as_str())
        )
    }
}

/// Which directory record a write or a delete is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    Permission,
    Role,
    Tenant,
    User,
    /// The vendor's API-token settings (one record).
    Configuration,
}

/// What a role-and-permission lookup yields for a JWT: keys, not ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
}
