//! Frontegg's audits API: `GET /audits` reads a page of the trail, `POST /audits` records an
//! event of the vendor's own (what Frontegg's `AuditsClient.getAudits` and `sendAudit` call).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::caller::{AuditReader, Vendor};
use super::request::Call;
use super::response::json;
use crate::app::App;
use crate::domain::audit::{
    AuditEvent, AuditPage, AuditQuery, EventView, MAX_PAGE, Scope, VendorEvent,
};
use crate::domain::{TenantId, rules};
use crate::error::{Error, Result};

/// The longest id a filter names.
const MAX_ID_CHARS: usize = 300;

/// How many events a page holds when `count` is not given.
const DEFAULT_COUNT: u64 = 20;

/// The query parameters `GET /audits` reads; any other is refused by name.
const PARAMETERS: [&str; 9] = [
    "offset",
    "count",
    "sortBy",
    "sortDirection",
    "filter",
    "tenantId",
    "targetId",
    "clientId",
    "actorId",
];

#[derive(Serialize)]
struct PageView<'e> {
    data: Vec<EventView<'e>>,
    total: u64,
}

/// The one value of a query parameter (400 when given twice, empty or too long; an empty
/// `filter`, as a search box sends it, is no filter).
fn single(call: &Call, name: &str) -> Result<Option<String>> {
    match call.query_value(name)? {
        Some(value) if value.chars().count() > MAX_ID_CHARS => Err(Error::bad_request(format!(
            "{name} is longer than {MAX_ID_CHARS} characters"
        ))),
        Some(value) if value.is_empty() && name == "filter" => Ok(None),
        Some(value) if value.is_empty() => Err(Error::bad_request(format!("{name} is empty"))),
        other => Ok(other),
    }
}

/// What a read's filters name, each at most once; they all apply (an event has one tenant, one
/// target and one actor, so two different values of one of them match nothing).
struct Filters {
    tenant: Option<TenantId>,
    target: Option<String>,
    actor: Option<String>,
    /// Two filters name different values of what an event has one of.
    contradict: bool,
}

impl Filters {
    /// The tenant (`frontegg-tenant-id` or `tenantId`, and a portal session's own), the target
    /// (`filter`, `targetId` or `clientId`) and the actor (`actorId`).
    fn of(reader: &AuditReader, call: &Call) -> Result<Self> {
        let mut contradict = false;
        let mut one = |values: Vec<String>| {
            let first = values.first().cloned();
            contradict |= values.iter().any(|v| Some(v) != first.as_ref());
            first
        };
        let mut tenants: Vec<String> = reader
            .tenant()
            .map(ToString::to_string)
            .into_iter()
            .collect();
        tenants.extend(call.tenant_header()?.map(String::from));
        if let Some(tenant) = single(call, "tenantId")? {
            rules::field("tenantId", TenantId::parse(&tenant))?;
            tenants.push(tenant);
        }
        let tenant = one(tenants).map(|t| TenantId::parse(&t)).transpose();
        let tenant = tenant.map_err(|_| Error::bad_request("tenantId is not a tenant id"))?;
        let mut targets = Vec::new();
        for name in ["filter", "targetId", "clientId"] {
            targets.extend(single(call, name)?);
        }
        let target = one(targets);
        let actor = single(call, "actorId")?;
        Ok(Self {
            tenant,
            target,
            actor,
            contradict,
        })
    }

    /// The indexed search they name (a target, else an actor, else a tenant, else every
    /// event), and the actor a target's events are narrowed to, if both are named.
    fn search(self) -> (Scope, Option<String>) {
        match (self.target, self.actor) {
            (Some(target), actor) => (Scope::Target(self.tenant, target), actor),
            (None, Some(actor)) => (Scope::Actor(self.tenant, actor), None),
            (None, None) => (self.tenant.map_or(Scope::All, Scope::Tenant), None),
        }
    }
}

/// `GET /audits`: a page of the events still kept, newest first unless `sortDirection=asc`,
/// as `{data, total}`; a portal session's, of its own tenant only.
pub async fn list(app: Arc<App>, reader: AuditReader, call: Call) -> Result<Response> {
    let pairs = call.query_pairs();
    if let Some((name, _)) = pairs
        .iter()
        .find(|(k, _)| !PARAMETERS.contains(&k.as_str()))
    {
        return Err(Error::bad_request(format!(
            "Unknown parameter {}; audits are read by {}",
            rules::excerpt(name),
            PARAMETERS.join(", ")
        )));
    }
    if let Some(by) = single(&call, "sortBy")?.filter(|by| by != "createdAt") {
        return Err(Error::bad_request(format!(
            "sortBy must be createdAt, not {:?}",
            rules::excerpt(&by)
        )));
    }
    let oldest_first = match single(&call, "sortDirection")?.as_deref() {
        None | Some("desc" | "DESC") => false,
        Some("asc" | "ASC") => true,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "sortDirection must be asc or desc, not {:?}",
                rules::excerpt(other)
            )));
        }
    };
    let max = u64::try_from(MAX_PAGE).unwrap_or(u64::MAX);
    let filters = Filters::of(&reader, &call)?;
    let contradict = filters.contradict;
    let (scope, narrowed_to) = filters.search();
    let query = AuditQuery {
        scope,
        offset: call.query_number("offset", 0, 0..=1_000_000_000)?,
        count: usize::try_from(call.query_number("count", DEFAULT_COUNT, 1..=max)?)
            .unwrap_or(MAX_PAGE),
        oldest_first,
    };
    let page = match contradict {
        true => AuditPage::default(),
        false => app.audits().page(&query, narrowed_to.as_deref()).await?,
    };
    let view = PageView {
        data: page.events.iter().map(AuditEvent::view).collect(),
        total: page.total,
    };
    json(StatusCode::OK, &view)
}

/// `POST /audits`: records the vendor's own event (`tenantId` and `severity` required; any
/// other fields kept as sent, within bounds), answered with the event as stored.
pub async fn send(app: Arc<App>, _: Vendor, call: Call) -> Result<Response> {
    let event = VendorEvent::parse(call.json_object()?)?;
    let event = app.audits().by(call.attribution()).record(event).await?;
    json(StatusCode::CREATED, &AuditEvent::view(&event))
}
