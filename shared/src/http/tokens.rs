//! Token management: tenant tokens and personal tokens, each managed by its owner.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::caller::{TenantOwner, UserOwner};
use super::request::{Call, StrictBody};
use super::response::{done, json};
use crate::app::App;
use crate::domain::federation::{LocalIssuers, TrustPolicy, trust_policies};
use crate::domain::rules;
use crate::domain::usage::{DayUsage, Refused};
use crate::domain::{ApiToken, ClientId, GrantId, Metadata, Secret, SecretState, TenantId, UserId};
use crate::error::{Error, Result};
use crate::operations::{Manager, NewToken, TOKEN, TokenPatch};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTokenBody {
    description: Option<String>,
    metadata: Option<Metadata>,
    role_ids: Option<Vec<String>>,
    permission_ids: Option<Vec<String>>,
    expires_in_minutes: Option<serde_json::Number>,
    /// Any JSON, so that a bad entry is refused by name.
    allowed_ips: Option<serde_json::Value>,
    trust_policies: Option<serde_json::Value>,
    /// `false`: a token for workloads only, whose secret is never shown (no one outside the
    /// service ever knows it).
    with_secret: Option<serde_json::Value>,
}

/// Role and permission ids granted to a tenant token.
type Grants = (Vec<GrantId>, Vec<GrantId>);

impl NewTokenBody {
    /// The token asked for, and whether the answer shows its secret.
    fn into_new_token(
        self,
        created_by_user_id: Option<UserId>,
        (role_ids, permission_ids): Grants,
        local: &LocalIssuers,
    ) -> Result<(NewToken, bool)> {
        let new = NewToken {
            created_by_user_id,
            description: self.description.map(rules::description).transpose()?,
            metadata: rules::metadata(self.metadata.unwrap_or_default())?,
            role_ids,
            permission_ids,
            expires_in_minutes: rules::expires_in_minutes(self.expires_in_minutes.as_ref())?,
            allowed_ips: self
                .allowed_ips
                .as_ref()
                .map(rules::allowed_ips)
                .transpose()?
                .unwrap_or_default(),
            trust_policies: self
                .trust_policies
                .as_ref()
                .map(|field| trust_policies(field, local))
                .transpose()?
                .unwrap_or_default(),
        };
        let shown = shows_secret(self.with_secret.as_ref(), &new)?;
        Ok((new, shown))
    }

    /// As Frontegg: when both are given, roleIds wins.
    fn grants(&mut self) -> Result<Grants> {
        Ok(match self.role_ids.take() {
            Some(roles) => (rules::grant_ids("roleIds", &roles)?, Vec::new()),
            None => {
                let permissions = self.permission_ids.take().unwrap_or_default();
                (Vec::new(), rules::grant_ids("permissionIds", &permissions)?)
            }
        })
    }
}

/// Whether the answer to a create shows the secret: unless `withSecret` is `false`, which a
/// token with no trust policy could not work without.
fn shows_secret(with_secret: Option<&serde_json::Value>, new: &NewToken) -> Result<bool> {
    let shown = match with_secret {
        None => true,
        Some(serde_json::Value::Bool(shown)) => *shown,
        Some(_) => return Err(Error::bad_request("withSecret must be true or false")),
    };
    match shown || !new.trust_policies.is_empty() {
        true => Ok(shown),
        false => Err(Error::bad_request(
            "withSecret: a token without a secret needs trustPolicies, or nothing could use it",
        )),
    }
}

/// What every token view shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenFields<'t> {
    client_id: ClientId,
    /// `null` when none was given, as Frontegg answers.
    description: Option<&'t str>,
    tenant_id: &'t TenantId,
    metadata: &'t Metadata,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    /// Where it may be used from; absent: anywhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_ips: Vec<String>,
    /// The workloads that may exchange their platform's token for its JWTs; absent: none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    trust_policies: &'t [TrustPolicy],
    #[serde(flatten)]
    secret: SecretView<'t>,
}

/// What a credential's view (an API token's, a vendor credential's) shows of its secrets:
/// never a hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SecretView<'s> {
    /// When the secret was last rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<String>,
    /// When the secret replaced by the last rotation stops (or stopped) working.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<String>,
    /// Only in the answer that creates the credential or rotates its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'s str>,
}

impl<'s> SecretView<'s> {
    pub(super) fn of(state: &SecretState, secret: Option<&'s Secret>) -> Self {
        Self {
            rotated_at: state.rotated_at.map(|t| t.iso8601()),
            previous_secret_expires_at: state.previous.as_ref().map(|p| p.until.iso8601()),
            secret: secret.map(Secret::expose),
        }
    }
}

impl<'t> TokenFields<'t> {
    fn of(token: &'t ApiToken, secret: Option<&'t Secret>) -> Self {
        Self {
            client_id: token.client_id,
            description: token.description.as_deref(),
            tenant_id: &token.tenant_id,
            metadata: &token.metadata,
            created_at: token.created_at.iso8601(),
            last_used_at: token.last_used_at.map(|t| t.iso8601()),
            allowed_ips: token.allowed_ips.texts(),
            trust_policies: &token.trust_policies,
            secret: SecretView::of(&token.secret, secret),
        }
    }
}

#[derive(Serialize)]
struct PersonalTokenView<'t> {
    #[serde(flatten)]
    token: TokenFields<'t>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
}

impl<'t> PersonalTokenView<'t> {
    fn of(token: &'t ApiToken, secret: Option<&'t Secret>) -> Self {
        Self {
            token: TokenFields::of(token, secret),
            expires: token.expires_at.map(|t| t.iso8601()),
        }
    }
}

/// Frontegg's schema requires every field of a tenant token: `null` where unset.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TenantTokenView<'t> {
    #[serde(flatten)]
    token: TokenFields<'t>,
    created_by_user_id: Option<&'t UserId>,
    /// In listings: what people call the user who made it (name, else email), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by_name: Option<String>,
    role_ids: &'t [GrantId],
    permission_ids: &'t [GrantId],
    expires: Option<String>,
}

impl<'t> TenantTokenView<'t> {
    fn of(token: &'t ApiToken, secret: Option<&'t Secret>) -> Self {
        Self {
            token: TokenFields::of(token, secret),
            created_by_user_id: token.created_by_user_id.as_ref(),
            created_by_name: None,
            role_ids: &token.role_ids,
            permission_ids: &token.permission_ids,
            expires: token.expires_at.map(|t| t.iso8601()),
        }
    }
}

/// `POST /identity/resources/users/api-tokens/v1`: personal tokens act with their user's roles,
/// so none are granted here.
pub async fn create_personal(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    let body: NewTokenBody = call.json()?;
    let (user, local) = (caller.user_id().clone(), &app.settings().local_issuers);
    let (new, shown) = body.into_new_token(Some(user), Grants::default(), local)?;
    let created = app
        .api_tokens()
        .by(call.attribution())
        .create(new, &caller.manager())
        .await?;
    let secret = shown.then_some(&created.secret);
    let view = PersonalTokenView::of(&created.record, secret);
    json(StatusCode::CREATED, &view)
}

/// `POST /identity/resources/tenants/api-tokens/v1` and `/v2`.
pub async fn create_tenant(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    let mut body: NewTokenBody = call.json()?;
    let grants = body.grants()?;
    let local = &app.settings().local_issuers;
    let (new, shown) = body.into_new_token(caller.acting_user().cloned(), grants, local)?;
    let created = app
        .api_tokens()
        .by(call.attribution())
        .create(new, &caller.manager())
        .await?;
    let view = TenantTokenView::of(&created.record, shown.then_some(&created.secret));
    json(StatusCode::CREATED, &view)
}

/// `GET /identity/resources/users/api-tokens/v1`.
pub async fn list_personal(app: Arc<App>, caller: UserOwner, _: Call) -> Result<Response> {
    let tokens = app.api_tokens().list(&caller.manager()).await?;
    let views: Vec<_> = tokens
        .iter()
        .map(|t| PersonalTokenView::of(t, None))
        .collect();
    json(StatusCode::OK, &views)
}

/// `GET /identity/resources/tenants/api-tokens/v1`, each token with the name of the user who
/// made it (one read per such user).
pub async fn list_tenant(app: Arc<App>, caller: TenantOwner, _: Call) -> Result<Response> {
    let tokens = app.api_tokens().list(&caller.manager()).await?;
    let names = makers(&app, &tokens).await?;
    let views: Vec<_> = tokens
        .iter()
        .map(|t| TenantTokenView {
            created_by_name: maker_of(t).and_then(|maker| names.get(&maker).cloned()),
            ..TenantTokenView::of(t, None)
        })
        .collect();
    json(StatusCode::OK, &views)
}

/// Who made a token: a user, or the vendor credential whose token did.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Maker {
    User(UserId),
    Vendor(String),
}

fn maker_of(token: &ApiToken) -> Option<Maker> {
    match (&token.created_by_user_id, &token.created_by_vendor) {
        (Some(user), _) => Some(Maker::User(user.clone())),
        (None, Some(vendor)) => Some(Maker::Vendor(vendor.clone())),
        (None, None) => None,
    }
}

/// What people call the makers of `tokens`: each user's name (else email), one read per user;
/// each vendor credential's name, from one listing. Makers since deleted are left out.
async fn makers(app: &App, tokens: &[ApiToken]) -> Result<HashMap<Maker, String>> {
    let mut users: Vec<&UserId> = (tokens.iter())
        .filter_map(|t| t.created_by_user_id.as_ref())
        .collect();
    users.sort();
    users.dedup();
    let directory = app.directory();
    let people = futures::future::try_join_all(users.iter().map(|id| directory.user(id))).await?;
    let mut names: HashMap<Maker, String> = (users.iter().zip(people))
        .filter_map(|(id, person)| {
            let name = person?.doc.display_name()?.to_owned();
            Some((Maker::User((*id).clone()), name))
        })
        .collect();
    if tokens.iter().any(|t| t.created_by_vendor.is_some()) {
        for vendor in app.vendors().list().await? {
            names.insert(Maker::Vendor(vendor.client_id.to_string()), vendor.name);
        }
    }
    Ok(names)
}

/// `DELETE /identity/resources/users/api-tokens/v1/{id}`.
pub async fn delete_personal(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    app.api_tokens()
        .by(call.attribution())
        .delete(&caller.manager(), &call.client_id(TOKEN)?)
        .await?;
    done()
}

/// `DELETE /identity/resources/tenants/api-tokens/v1/{id}`.
pub async fn delete_tenant(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    app.api_tokens()
        .by(call.attribution())
        .delete(&caller.manager(), &call.client_id(TOKEN)?)
        .await?;
    done()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RotationBody {
    /// Any JSON, so that a string or an object is refused naming the field.
    grace_minutes: Option<serde_json::Value>,
}

impl StrictBody for RotationBody {}

/// A rotation's grace from its body, which may be empty (of tokens and vendor credentials).
pub(super) fn grace_minutes(call: &Call) -> Result<Option<u32>> {
    let body: RotationBody = call.strict_json_or_default()?;
    Ok(rules::grace_minutes(body.grace_minutes.as_ref())?)
}

/// `POST /identity/resources/users/api-tokens/v1/{id}/rotate`: a new secret, shown once.
pub async fn rotate_personal(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    let grace = grace_minutes(&call)?;
    let rotated = app
        .api_tokens()
        .by(call.attribution())
        .rotate(&caller.manager(), &call.client_id(TOKEN)?, grace)
        .await?;
    let view = PersonalTokenView::of(&rotated.record, Some(&rotated.secret));
    json(StatusCode::OK, &view)
}

/// `POST /identity/resources/tenants/api-tokens/v1/{id}/rotate`: a new secret, shown once.
pub async fn rotate_tenant(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    let grace = grace_minutes(&call)?;
    let rotated = app
        .api_tokens()
        .by(call.attribution())
        .rotate(&caller.manager(), &call.client_id(TOKEN)?, grace)
        .await?;
    let view = TenantTokenView::of(&rotated.record, Some(&rotated.secret));
    json(StatusCode::OK, &view)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenPatchBody {
    description: Option<String>,
    metadata: Option<Metadata>,
    role_ids: Option<Vec<String>>,
    permission_ids: Option<Vec<String>>,
    allowed_ips: Option<serde_json::Value>,
    trust_policies: Option<serde_json::Value>,
}

impl TokenPatchBody {
    fn into_patch(self, local: &LocalIssuers) -> Result<TokenPatch, rules::Invalid> {
        let body = self;
        Ok(TokenPatch {
            description: body.description.map(rules::description).transpose()?,
            metadata: body.metadata.map(rules::metadata).transpose()?,
            role_ids: body
                .role_ids
                .map(|ids| rules::grant_ids("roleIds", &ids))
                .transpose()?,
            permission_ids: body
                .permission_ids
                .map(|ids| rules::grant_ids("permissionIds", &ids))
                .transpose()?,
            allowed_ips: body
                .allowed_ips
                .as_ref()
                .map(rules::allowed_ips)
                .transpose()?,
            trust_policies: body
                .trust_policies
                .as_ref()
                .map(|field| trust_policies(field, local))
                .transpose()?,
        })
    }
}

/// `PATCH /identity/resources/users/api-tokens/v1/{id}`: a personal token's description,
/// metadata, allowed addresses or trust policies (its roles are its user's).
pub async fn patch_personal(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    let token = patched(&app, &caller.manager(), &call).await?;
    json(StatusCode::OK, &PersonalTokenView::of(&token, None))
}

/// The token the call names, changed as its body says.
async fn patched(app: &App, manager: &Manager, call: &Call) -> Result<ApiToken> {
    let local = &app.settings().local_issuers;
    let patch = call.json::<TokenPatchBody>()?.into_patch(local)?;
    app.api_tokens()
        .by(call.attribution())
        .patch(manager, &call.client_id(TOKEN)?, patch)
        .await
}

/// `PATCH /identity/resources/tenants/api-tokens/v1/{id}`.
pub async fn patch_tenant(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    let token = patched(&app, &caller.manager(), &call).await?;
    json(StatusCode::OK, &TenantTokenView::of(&token, None))
}

/// A token's use over the last 30 days, as `GET …/api-tokens/v1/{clientId}/usage` answers it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageView {
    client_id: ClientId,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    /// Oldest first, today (UTC) last.
    days: Vec<DayView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DayView {
    /// `YYYY-MM-DD`, UTC.
    date: String,
    issued: u64,
    refused: Refused,
}

impl UsageView {
    fn of(token: &ApiToken, days: Vec<DayUsage>) -> Self {
        Self {
            client_id: token.client_id,
            last_used_at: token.last_used_at.map(|t| t.iso8601()),
            days: (days.into_iter())
                .map(|d| DayView {
                    date: d.day.date(),
                    issued: d.counts.issued,
                    refused: d.counts.refused,
                })
                .collect(),
        }
    }
}

async fn usage_view(app: &App, manager: &Manager, call: &Call) -> Result<Response> {
    let client_id = call.client_id(TOKEN)?;
    let (token, days) = app.api_tokens().usage(manager, &client_id).await?;
    json(StatusCode::OK, &UsageView::of(&token, days))
}

/// The use of every token the caller may act on, in one answer (the portal's charts).
async fn usage_views(app: &App, manager: &Manager) -> Result<Response> {
    let used = app.api_tokens().usage_of_all(manager).await?;
    let views: Vec<_> = (used.into_iter())
        .map(|(token, days)| UsageView::of(&token, days))
        .collect();
    json(StatusCode::OK, &views)
}

/// `GET /identity/resources/users/api-tokens/v1/{id}/usage`.
pub async fn usage_personal(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    usage_view(&app, &caller.manager(), &call).await
}

/// `GET /identity/resources/tenants/api-tokens/v1/{id}/usage`.
pub async fn usage_tenant(app: Arc<App>, caller: TenantOwner, call: Call) -> Result<Response> {
    usage_view(&app, &caller.manager(), &call).await
}

/// `GET /identity/resources/users/api-tokens/v1/usage`.
pub async fn usage_of_personal(app: Arc<App>, caller: UserOwner, _: Call) -> Result<Response> {
    usage_views(&app, &caller.manager()).await
}

/// `GET /identity/resources/tenants/api-tokens/v1/usage`.
pub async fn usage_of_tenant(app: Arc<App>, caller: TenantOwner, _: Call) -> Result<Response> {
    usage_views(&app, &caller.manager()).await
}
