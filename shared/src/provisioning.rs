//! Event-driven provisioning: directory changes published on EventBridge reach the
//! `provisioning` function through SQS. Each message is applied on its own: a malformed one is
//! reported as a batch item failure (and, after its retries, lands in the dead-letter queue)
//! without holding back the rest of its batch. Writes carry the event's `version`, so a
//! redelivered event changes nothing and an older one never overwrites newer state. Events
//! become the same domain records as API bodies do, through the same drafts and limits.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::domain::directory::{
    EntityKind, MembershipDraft, Origin, Permission, PermissionDraft, Role, RoleDraft, Tenant,
    TenantDraft, User, UserDraft,
};
use crate::domain::rules;
use crate::domain::{Metadata, TenantId, UserId};
use crate::error::{Error, Result};

/// The EventBridge envelope as SQS delivers it; only these fields matter here.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: serde_json::Value,
}

#[derive(Deserialize)]
struct Versioned<T> {
    version: u64,
    #[serde(flatten)]
    body: T,
}

/// `permission.*` and `role.*` details; a missing key defaults to the id.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GrantEvent {
    id: String,
    key: Option<String>,
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    permission_ids: Vec<String>,
}

impl From<GrantEvent> for PermissionDraft {
    fn from(e: GrantEvent) -> Self {
        Self {
            key: e.key.unwrap_or_else(|| e.id.clone()),
            id: e.id,
            name: e.name,
            description: e.description,
        }
    }
}

impl From<GrantEvent> for RoleDraft {
    fn from(e: GrantEvent) -> Self {
        Self {
            key: e.key.unwrap_or_else(|| e.id.clone()),
            id: e.id,
            name: e.name,
            permission_ids: e.permission_ids,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantEvent {
    tenant_id: String,
    name: Option<String>,
    metadata: Option<Metadata>,
}

impl From<TenantEvent> for TenantDraft {
    fn from(e: TenantEvent) -> Self {
        Self {
            id: e.tenant_id,
            name: e.name,
            metadata: e.metadata,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserEvent {
    user_id: String,
    email: Option<String>,
    name: Option<String>,
    metadata: Option<Metadata>,
    #[serde(default)]
    tenants: Vec<MembershipDraft>,
}

impl From<UserEvent> for UserDraft {
    fn from(e: UserEvent) -> Self {
        Self {
            id: e.user_id,
            email: e.email,
            name: e.name,
            metadata: e.metadata,
            tenants: e.tenants,
        }
    }
}

/// The event's body as `T` and its version as the write's origin.
fn detail<T: DeserializeOwned>(detail: serde_json::Value) -> Result<(T, Origin)> {
    let versioned: Versioned<T> = serde_json::from_value(detail)
        .map_err(|e| Error::bad_request(format!("malformed detail: {e}")))?;
    let origin = Origin::Event {
        version: versioned.version,
    };
    Ok((versioned.body, origin))
}

/// Applies one directory event; `Ok` whether it changed state or was already superseded.
pub async fn apply(app: &App, message: &str) -> Result<()> {
    let envelope: Envelope = serde_json::from_str(message)
        .map_err(|e| Error::bad_request(format!("not an EventBridge event: {e}")))?;
    let detail_type = envelope.detail_type.as_str();
    let body = envelope.detail;
    let directory = app.directory();
    let applied = match detail_type {
        "permission.upserted" => {
            let (event, origin) = detail::<GrantEvent>(body)?;
            let permission = Permission::try_from(PermissionDraft::from(event))?;
            directory.put_permission(&permission, origin).await?
        }
        "role.upserted" => {
            let (event, origin) = detail::<GrantEvent>(body)?;
            directory
                .put_role(&Role::try_from(RoleDraft::from(event))?, origin)
                .await?
        }
        "tenant.upserted" => {
            let (event, origin) = detail::<TenantEvent>(body)?;
            let draft = TenantDraft::from(event);
            directory
                .put_tenant(&Tenant::try_from(draft)?, origin)
                .await?
        }
        "user.upserted" => {
            let (event, origin) = detail::<UserEvent>(body)?;
            let draft = UserDraft::from(event);
            directory.put_user(&User::try_from(draft)?, origin).await?
        }
        "permission.deleted" | "role.deleted" => {
            let (event, origin) = detail::<GrantEvent>(body)?;
            let kind = match detail_type {
                "role.deleted" => EntityKind::Role,
                _ => EntityKind::Permission,
            };
            directory.delete_grant(kind, &event.id, origin).await?
        }
        "tenant.deleted" => {
            let (e, origin) = detail::<TenantEvent>(body)?;
            let id = rules::field("tenantId", TenantId::parse(&e.tenant_id))?;
            directory.delete_tenant(&id, origin).await?
        }
        "user.deleted" => {
            let (e, origin) = detail::<UserEvent>(body)?;
            let id = rules::field("userId", UserId::parse(&e.user_id))?;
            directory.delete_user(&id, origin).await?
        }
        other => return Err(Error::bad_request(format!("unknown detail-type {other:?}"))),
    };
    if !applied {
        tracing::info!(detail_type, "superseded by a newer version; skipped");
    }
    Ok(())
}

/// Applies every message of a batch and reports the ones that failed, so only they are retried.
/// Once the store is unavailable (unreachable, hanging, throttling), the rest of the batch is
/// reported failed without being tried: SQS brings it back after the visibility timeout, and
/// the function ends within one call's budget instead of one per message.
pub async fn handle_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut unavailable = false;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if unavailable {
            response.add_failure(id);
            continue;
        }
        let outcome = match &record.body {
            Some(body) => apply(app, body).await,
            None => Err(Error::bad_request("message has no body")),
        };
        if let Err(error) = outcome {
            match &error {
                Error::Internal(cause) => {
                    tracing::error!(message_id = id, cause = ?cause, "event failed")
                }
                Error::Unavailable(cause) => {
                    tracing::warn!(message_id = id, cause = ?cause, "store unavailable; batch left for retry");
                    unavailable = true;
                }
                other => tracing::warn!(message_id = id, error = %other, "event refused"),
            }
            response.add_failure(id);
        }
    }
    response
}
