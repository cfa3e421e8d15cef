//! The audit trail streamed out for a SIEM, each event as `GET /audits` shows it, at least once
//! (a consumer tells a repeat by its `id`).
//!
//! On AWS the table's stream carries each event's vendor-wide copy (`AUDIT#*#<day>`, written
//! in the transaction of the change it records) to the `audit-stream` function, which puts it
//! on the template's EventBridge bus (`AuditBus`, source [`SOURCE`], detail type
//! [`DETAIL_TYPE`]). Locally, the embedded store appends each event to a JSON-lines file
//! (`M2M_AUDIT_STREAM_FILE`, see `EmbeddedStore::stream_audits_to`).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::Deserialize;

use crate::domain::audit::AuditEvent;
use crate::error::{Error, Result};

/// The `source` of every event the bus receives from the trail.
pub const SOURCE: &str = "m2m-auth";
/// Their `detail-type`.
pub const DETAIL_TYPE: &str = "Audit event";
/// The partition prefix of the copies streamed: every event has one such copy.
pub const STREAMED_PREFIX: &str = "AUDIT#*#";
/// Entries one `PutEvents` call takes, at most.
const ENTRIES_PER_PUT: usize = 10;

/// What the stream's function reads of a copy's new image.
#[derive(Deserialize)]
struct Copy {
    pk: String,
    event: String,
}

/// Puts the trail's events on an EventBridge bus.
pub struct Publisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl Publisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    /// Puts every event `batch` newly records on the bus, and answers the records that did not
    /// reach it, so that Lambda hands them (and those after them) over again. A record that is
    /// not an event's vendor-wide copy is passed over; one that cannot be read is logged and
    /// passed over too, as no retry would ever read it.
    pub async fn publish(&self, batch: Event) -> DynamoDbEventResponse {
        let mut entries = Vec::new();
        for record in &batch.records {
            match self.entry(record) {
                Ok(Some(entry)) => entries.push((record.change.sequence_number.clone(), entry)),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    error = %e,
                    sequence = ?record.change.sequence_number,
                    "a streamed audit event is unreadable and is left out"
                ),
            }
        }
        let mut not_put = Vec::new();
        for chunk in entries.chunks(ENTRIES_PER_PUT) {
            let put = self
                .client
                .put_events()
                .set_entries(Some(chunk.iter().map(|(_, e)| e.clone()).collect()))
                .send()
                .await;
            match put {
                Ok(output) => {
                    let results = output.entries();
                    for (i, (sequence, _)) in chunk.iter().enumerate() {
                        let failed = results.get(i).is_none_or(|r| r.error_code().is_some());
                        if failed {
                            not_put.push(sequence.clone());
                        }
                    }
                }
                Err(e) => {
                    let e = aws_sdk_eventbridge::error::DisplayErrorContext(e);
                    tracing::warn!(error = %e, "audit events did not reach the bus");
                    not_put.extend(chunk.iter().map(|(sequence, _)| sequence.clone()));
                }
            }
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = not_put
            .into_iter()
            .map(|sequence| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                failure
            })
            .collect();
        response
    }

    /// The bus entry of a record that inserts an event's vendor-wide copy; none for another.
    fn entry(&self, record: &EventRecord) -> Result<Option<PutEventsRequestEntry>> {
        if record.event_name != "INSERT" {
            return Ok(None);
        }
        let image = record.change.new_image.clone();
        let copy: Copy = serde_dynamo::from_item(image).map_err(Error::internal)?;
        if !copy.pk.starts_with(STREAMED_PREFIX) {
            return Ok(None);
        }
        let event: AuditEvent = serde_json::from_str(&copy.event).map_err(Error::internal)?;
        let detail = serde_json::to_string(&event.view()).map_err(Error::internal)?;
        Ok(Some(
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(SOURCE)
                .detail_type(DETAIL_TYPE)
                .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                    event.at.millis(),
                ))
                .detail(detail)
                .build(),
        ))
    }
}
