//! Event-driven provisioning: directory changes published on EventBridge reach the
//! `provisioning` function through SQS. Each message is applied on its own: a malformed one is
//! reported as a batch item failure (and, after its retries, lands in the dead-letter queue)
//! without holding back the rest of its batch. Writes carry the event's `version`, so a
//! redelivered event changes nothing and an older one never overwrites newer state.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::domain::directory::{EntityKind, Membership, Permission, Role, Tenant, User};
use crate::domain::{GrantId, Metadata, TenantId, UserId};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionEvent {
    id: GrantId,
    key: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleEvent {
    id: GrantId,
    key: Option<String>,
    name: Option<String>,
    #[serde(default)]
    permission_ids: Vec<GrantId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantEvent {
    tenant_id: TenantId,
    name: Option<String>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserEvent {
    user_id: UserId,
    email: Option<String>,
    #[serde(default)]
    tenants: Vec<Membership>,
}

fn detail<T: DeserializeOwned>(detail: serde_json::Value) -> Result<Versioned<T>> {
    serde_json::from_value(detail).map_err(|e| Error::bad_request(format!("malformed detail: {e}")))
}

/// Applies one directory event; `Ok` whether it changed state or was already superseded.
pub async fn apply(app: &App, message: &str) -> Result<()> {
    let envelope: Envelope = serde_json::from_str(message)
        .map_err(|e| Error::bad_request(format!("not an EventBridge event: {e}")))?;
    let applied = match envelope.detail_type.as_str() {
        "permission.upserted" => {
            let event = detail::<PermissionEvent>(envelope.detail)?;
            let permission = Permission {
                key: event.body.key.unwrap_or_else(|| event.body.id.to_string()),
                id: event.body.id,
                name: event.body.name.unwrap_or_default(),
                description: event.body.description.unwrap_or_default(),
            };
            app.put_permission(&permission, Some(event.version)).await?
        }
        "role.upserted" => {
            let event = detail::<RoleEvent>(envelope.detail)?;
            let role = Role {
                key: event.body.key.unwrap_or_else(|| event.body.id.to_string()),
                id: event.body.id,
                name: event.body.name.unwrap_or_default(),
                permission_ids: event.body.permission_ids,
            };
            app.put_role(&role, Some(event.version)).await?
        }
        "tenant.upserted" => {
            let event = detail::<TenantEvent>(envelope.detail)?;
            let tenant = Tenant {
                id: event.body.tenant_id,
                name: event.body.name.unwrap_or_default(),
                metadata: event.body.metadata.unwrap_or_default(),
            };
            app.put_tenant(&tenant, Some(event.version)).await?
        }
        "user.upserted" => {
            let event = detail::<UserEvent>(envelope.detail)?;
            let user = User {
                id: event.body.user_id,
                email: event.body.email,
                tenants: event.body.tenants,
            };
            app.put_user(&user, Some(event.version)).await?
        }
        "permission.deleted" | "role.deleted" => {
            let event = detail::<IdOnly>(envelope.detail)?;
            let kind = if envelope.detail_type == "role.deleted" {
                EntityKind::Role
            } else {
                EntityKind::Permission
            };
            app.delete_grant(kind, event.body.id.as_str(), Some(event.version))
                .await?
        }
        "tenant.deleted" => {
            let event = detail::<TenantEvent>(envelope.detail)?;
            app.delete_tenant(&event.body.tenant_id, Some(event.version))
                .await?
        }
        "user.deleted" => {
            let event = detail::<UserEvent>(envelope.detail)?;
            app.delete_user(&event.body.user_id, Some(event.version))
                .await?
        }
        other => return Err(Error::bad_request(format!("unknown detail-type {other:?}"))),
    };
    if !applied {
        tracing::info!(
            detail_type = envelope.detail_type,
            "superseded by a newer version; skipped"
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct IdOnly {
    id: GrantId,
}

/// Applies every message of a batch and reports the ones that failed, so only they are retried.
pub async fn handle_batch(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match &record.body {
            Some(body) => apply(app, body).await,
            None => Err(Error::bad_request("message has no body")),
        };
        if let Err(error) = outcome {
            match &error {
                Error::Internal(cause) => {
                    tracing::error!(message_id = id, cause = ?cause, "event failed")
                }
                other => tracing::warn!(message_id = id, error = %other, "event refused"),
            }
            response.add_failure(id);
        }
    }
    response
}
