//! Event-driven provisioning: directory changes published on EventBridge reach the
//! `provisioning` function through SQS. Each message is applied on its own: a malformed one is
//! reported as a batch item failure (and, after its retries, lands in the dead-letter queue)
//! without holding back the rest of its batch. Writes carry the event's `version`, so a
//! redelivered event changes nothing (but finishes a delete's cascade) and an older one never
//! overwrites newer state. Events are the same changes as the API's bodies, through the same
//! rules and limits, and partial as the API's `PUT`: a field left out stays as stored.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::App;
use crate::domain::audit::{Actor, Attribution};
use crate::domain::directory::{
    EntityKind, Origin, PermissionChange, RoleChange, TenantChange, UserChange,
};
use crate::domain::lives::MAX_VERSION;
use crate::domain::rules;
use crate::domain::{GrantId, TenantId, UserId};
use crate::error::{Error, Result};
use crate::operations::Directory;

/// The EventBridge envelope as SQS delivers it; only these fields matter here.
#[derive(Deserialize)]
struct Envelope {
    /// Who published it, as the audit trail names the actor.
    #[serde(default)]
    source: String,
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

/// `permission.*` and `role.*` details: the id, and for an upsert the change.
#[derive(Deserialize)]
struct GrantEvent<C> {
    id: String,
    #[serde(flatten)]
    change: C,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantEvent {
    tenant_id: String,
    #[serde(flatten)]
    change: TenantChange,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserEvent {
    user_id: String,
    #[serde(flatten)]
    change: UserChange,
}

/// The event's body as `T` and its version as the write's origin; a version beyond
/// [`MAX_VERSION`] is refused.
fn detail<T: DeserializeOwned>(detail: serde_json::Value) -> Result<(T, Origin)> {
    let versioned: Versioned<T> = serde_json::from_value(detail)
        .map_err(|e| Error::bad_request(format!("malformed detail: {e}")))?;
    if versioned.version > MAX_VERSION {
        return Err(Error::bad_request(format!(
            "version must be at most {MAX_VERSION}"
        )));
    }
    let origin = Origin::Event {
        version: versioned.version,
    };
    Ok((versioned.body, origin))
}

/// A role or permission id, checked as the API checks it.
fn grant_id(id: &str) -> Result<GrantId> {
    Ok(rules::field("id", GrantId::parse(id))?)
}

/// The actor of an event from `source`: its first 128 visible characters (`events` if none).
fn provisioner(source: &str) -> Attribution {
    let id: String = source
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let id = if id.is_empty() {
        "events".to_owned()
    } else {
        id
    };
    Attribution::new(Actor::Provisioning { id }, None, None)
}

/// Applies one directory event, as the API applies the same change: `Ok` whether it changed
/// state, repeated what is stored (a redelivery: a delete's cascade runs again), or was
/// superseded by a newer version. An event of the version already stored that says something
/// else is refused, as is one the API would refuse.
pub async fn apply(app: &App, message: &str) -> Result<()> {
    let envelope: Envelope = serde_json::from_str(message)
        .map_err(|e| Error::bad_request(format!("not an EventBridge event: {e}")))?;
    let detail_type = envelope.detail_type.as_str();
    let directory = app.directory().by(provisioner(&envelope.source));
    let applied = match detail_type.split_once('.') {
        Some((entity, "upserted")) => upsert(&directory, entity, envelope.detail).await?,
        Some((entity, "deleted")) => delete(&directory, entity, envelope.detail).await?,
        _ => None,
    };
    match applied {
        None => Err(Error::bad_request(format!(
            "unknown detail-type {detail_type:?}"
        ))),
        Some(false) => {
            tracing::info!(
                detail_type,
                "not newer than the stored version: nothing written"
            );
            Ok(())
        }
        Some(true) => Ok(()),
    }
}

/// Applies an `{entity}.upserted` event: whether it wrote, `None` for an unknown entity.
async fn upsert(directory: &Directory<'_>, entity: &str, body: Value) -> Result<Option<bool>> {
    Ok(Some(match entity {
        "permission" => {
            let (e, origin) = detail::<GrantEvent<PermissionChange>>(body)?;
            let id = grant_id(&e.id)?;
            directory
                .upsert_permission(id.as_str(), &e.change, origin)
                .await?
        }
        "role" => {
            let (e, origin) = detail::<GrantEvent<RoleChange>>(body)?;
            let id = grant_id(&e.id)?;
            directory
                .upsert_role(id.as_str(), &e.change, origin)
                .await?
        }
        "tenant" => {
            let (e, origin) = detail::<TenantEvent>(body)?;
            let id = rules::field("tenantId", TenantId::parse(&e.tenant_id))?;
            let written = directory.upsert_tenant(&id, &e.change, origin).await?;
            written.is_some()
        }
        "user" => {
            let (e, origin) = detail::<UserEvent>(body)?;
            let id = rules::field("userId", UserId::parse(&e.user_id))?;
            let written = directory.upsert_user(&id, &e.change, origin).await?;
            written.is_some()
        }
        _ => return Ok(None),
    }))
}

/// Applies an `{entity}.deleted` event: whether it wrote, `None` for an unknown entity. The
/// cascade runs either way.
async fn delete(directory: &Directory<'_>, entity: &str, body: Value) -> Result<Option<bool>> {
    Ok(Some(match entity {
        "permission" | "role" => {
            let (e, origin) = detail::<GrantEvent<serde::de::IgnoredAny>>(body)?;
            let kind = match entity {
                "role" => EntityKind::Role,
                _ => EntityKind::Permission,
            };
            directory
                .delete_grant(kind, grant_id(&e.id)?.as_str(), origin)
                .await?
        }
        "tenant" => {
            let (e, origin) = detail::<TenantEvent>(body)?;
            let id = rules::field("tenantId", TenantId::parse(&e.tenant_id))?;
            directory.delete_tenant(&id, origin).await?
        }
        "user" => {
            let (e, origin) = detail::<UserEvent>(body)?;
            let id = rules::field("userId", UserId::parse(&e.user_id))?;
            directory.delete_user(&id, origin).await?
        }
        _ => return Ok(None),
    }))
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
                Error::Unavailable(_, cause) => {
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
