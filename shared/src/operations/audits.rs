//! The audit trail as read: pages of a scope's events, and the events the vendor records of
//! its own (Frontegg's audits API).

use crate::domain::TenantId;
use crate::domain::audit::{
    Attribution, AuditEvent, AuditPage, AuditQuery, MAX_PAGE, Severity, Target, VendorEvent,
};
use crate::domain::rules::excerpt;
use crate::error::{Error, Result};
use crate::ports::AuditStore;

use super::Auditor;
use crate::machinery::Refusals;

/// The most events of one search that may be narrowed to one actor.
pub const MAX_NARROWED: u64 = 10_000;

pub struct Audits<'a> {
    pub(crate) store: &'a dyn AuditStore,
    pub(crate) refusals: &'a Refusals,
    pub(crate) audit: Auditor<'a>,
}

impl Audits<'_> {
    /// Who acts, as the audit trail records it.
    #[must_use]
    pub fn by(mut self, by: Attribution) -> Self {
        self.audit.by = by;
        self
    }

    /// A page of the events still kept, and how many the search finds; with `actor`, only
    /// that actor's events of the search (read whole, so only for a search of a few: at most
    /// [`MAX_NARROWED`] events, else 400).
    pub async fn page(&self, query: &AuditQuery, actor: Option<&str>) -> Result<AuditPage> {
        let now = self.audit.clock.now();
        let Some(actor) = actor else {
            return self.store.audits(query, now).await;
        };
        let mut whole = AuditQuery {
            offset: 0,
            count: MAX_PAGE,
            ..query.clone()
        };
        let mut kept = Vec::new();
        loop {
            let page = self.store.audits(&whole, now).await?;
            if page.total > MAX_NARROWED {
                return Err(Error::bad_request(format!(
                    "The target has more than {MAX_NARROWED} events to narrow by actor; \
                     read by actorId alone"
                )));
            }
            let read = page.events.len();
            kept.extend(page.events.into_iter().filter(|e| e.actor.id() == actor));
            whole.offset += read as u64;
            if read < MAX_PAGE || whole.offset >= page.total {
                break;
            }
        }
        let total = kept.len() as u64;
        let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let events = kept.into_iter().skip(skip).take(query.count).collect();
        Ok(AuditPage { events, total })
    }

    /// Records a refusal that is itself the event (a 403 to a portal session): `name` done to
    /// `target` in `tenant_id`, refused because `why`. At most [`REFUSALS_PER_MINUTE`](crate::machinery::usage::REFUSALS_PER_MINUTE) of one
    /// actor's a minute in each process: the rest are not recorded, so that refused requests
    /// never turn into writes at the rate they come.
    pub async fn refused(
        &self,
        name: &str,
        target: Target,
        tenant_id: TenantId,
        why: &str,
    ) -> Result<()> {
        let now = self.audit.clock.now();
        if !self.refusals.admit(&self.audit.by.actor.id(), now) {
            return Ok(());
        }
        let event = self
            .audit
            .event(name, Severity::High, target, Some(tenant_id));
        let mut event = event.refused();
        event.description = format!("{}: {}", event.description, excerpt(why));
        self.store.record_event(&event).await
    }

    /// Records an event the vendor sends, as sent by whoever acts.
    pub async fn record(&self, event: VendorEvent) -> Result<AuditEvent> {
        let at = self.audit.clock.now();
        let event = event.into_event(&self.audit.by, at, self.audit.retention_days);
        self.store.record_event(&event).await?;
        Ok(event)
    }
}
