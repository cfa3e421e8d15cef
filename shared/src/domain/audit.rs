//! Audit events: who did what to which credential, when and from where.
//!
//! An event is written by the same atomic write as the change it records (see the ports), so
//! there is never a change without its event nor an event without its change. It names the
//! actor, the target and the request's address and user agent; it never holds a secret, a
//! hash, a JWT or a refresh token: its fields are ids, names of actions and short texts made
//! here or by the vendor ([`VendorEvent`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{ClientId, TenantId, UserId};
use super::rules::{self, Invalid};
use super::time::Timestamp;

/// How grave an event is, in Frontegg's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Medium,
    High,
    Critical,
    Error,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Info,
            Self::Medium,
            Self::High,
            Self::Critical,
            Self::Error,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "Info",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
            Self::Error => "Error",
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Actor {
    /// The holder of a vendor token, issued from this vendor credential.
    Vendor { id: String },
    /// A portal session's user, in the session's tenant.
    #[serde(rename_all = "camelCase")]
    User { id: UserId, tenant_id: TenantId },
    /// A provisioning event, from the EventBridge source that published it.
    Provisioning { id: String },
    /// A credential acting for itself: an API token's exchange, a vendor credential's login.
    Credential { id: ClientId },
    /// The service itself: first-start bootstrap and defaults.
    System,
    /// A request that named no one the service could check.
    Anonymous,
}

impl Actor {
    /// What an event's actor is searched by.
    pub fn id(&self) -> String {
        match self {
            Self::Vendor { id } | Self::Provisioning { id } => id.clone(),
            Self::User { id, .. } => id.to_string(),
            Self::Credential { id } => id.to_string(),
            Self::System => "system".to_owned(),
            Self::Anonymous => "anonymous".to_owned(),
        }
    }

    fn title(&self) -> String {
        match self {
            Self::Vendor { id } => format!("vendor credential {id}"),
            Self::User { id, tenant_id } => format!("user {id} of tenant {tenant_id}"),
            Self::Provisioning { id } => format!("provisioning from {id}"),
            Self::Credential { id } => format!("credential {id}"),
            Self::System => "the service".to_owned(),
            Self::Anonymous => "an anonymous caller".to_owned(),
        }
    }
}

/// What an action was done to: a kind (`apiToken`, `vendorCredential`, `tenant`, `user`,
/// `role`, `permission`, `configuration`, `portalSession`, or the vendor's own) and its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Target {
    pub fn new(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            kind: kind.to_owned(),
            id: id.to_string(),
        }
    }
}

/// How the action ended: done, or refused (where the refusal itself is the event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Success,
    Refused,
}

/// The most of a user agent an event keeps.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Who acts and from where, as a request (or a provisioning event) tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribution {
    pub actor: Actor,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Attribution {
    pub fn new(actor: Actor, ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        // A credential a client put in its user agent is not kept.
        let user_agent = user_agent.map(|agent| {
            super::secret::redacted(agent)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT_CHARS)
                .collect()
        });
        Self {
            actor,
            ip,
            user_agent,
        }
    }

    /// The service itself, with no request.
    pub const SYSTEM: Self = Self {
        actor: Actor::System,
        ip: None,
        user_agent: None,
    };
}

/// One event, as stored and as read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// A UUIDv7: ids sort as the events' times do.
    pub id: String,
    pub at: Timestamp,
    pub severity: Severity,
    pub action: String,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub description: String,
    /// The vendor's own fields, for events it sends ([`VendorEvent`]).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Until when it is kept (the store deletes it after).
    pub keep_until: Timestamp,
}

/// What an operation says of an action; the rest comes from who acted and the clock.
pub struct Action<'a> {
    pub name: &'a str,
    pub severity: Severity,
    pub target: Target,
    pub tenant_id: Option<TenantId>,
}

impl AuditEvent {
    /// The event of `action`, done by `by` at `at`, kept `retention_days` from the start of
    /// its day (so that the day's count ends with its events).
    pub fn of(action: Action<'_>, by: &Attribution, at: Timestamp, retention_days: u32) -> Self {
        let description = format!(
            "{} {} {}: {} by {}",
            target_title(&action.target.kind),
            action.target.id,
            verb(action.name),
            action.name,
            by.actor.title()
        );
        Self {
            id: event_id(at),
            at,
            severity: action.severity,
            action: action.name.to_owned(),
            actor: by.actor.clone(),
            tenant_id: action.tenant_id,
            target: action.target,
            ip: by.ip,
            user_agent: by.user_agent.clone(),
            outcome: Outcome::Success,
            description,
            fields: Map::new(),
            keep_until: keep_until(at, retention_days),
        }
    }

    /// The same event, recording a refusal.
    pub fn refused(mut self) -> Self {
        self.outcome = Outcome::Refused;
        if verb(&self.action) != "refused" {
            self.description = format!("refused: {}", self.description);
        }
        self
    }

    /// The day (`YYYY-MM-DD`) it happened, UTC.
    pub fn day(&self) -> String {
        day_of(self.at)
    }

    /// The searches that find it (see [`Scope`]), each of which counts it.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes = vec![
            Scope::All,
            Scope::Target(None, self.target.id.clone()),
            Scope::Actor(None, self.actor.id()),
        ];
        if let Some(tenant) = &self.tenant_id {
            scopes.extend([
                Scope::Tenant(tenant.clone()),
                Scope::Target(Some(tenant.clone()), self.target.id.clone()),
                Scope::Actor(Some(tenant.clone()), self.actor.id()),
            ]);
        }
        scopes
    }
}

fn verb(action: &str) -> &str {
    action.rsplit('.').next().unwrap_or(action)
}

fn target_title(kind: &str) -> &str {
    match kind {
        "apiToken" => "API token",
        "vendorCredential" => "Vendor credential",
        "tenant" => "Tenant",
        "user" => "User",
        "role" => "Role",
        "permission" => "Permission",
        "configuration" => "Configuration",
        "portalSession" => "Portal session",
        other => other,
    }
}

/// A UUIDv7 at `at`: its text sorts by time, to the millisecond.
fn event_id(at: Timestamp) -> String {
    let millis = u64::try_from(at.millis()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// `YYYY-MM-DD` of `at`, UTC.
pub fn day_of(at: Timestamp) -> String {
    at.iso8601()[..10].to_owned()
}

/// When the events of `at`'s day stop being kept.
pub fn keep_until(at: Timestamp, retention_days: u32) -> Timestamp {
    const DAY_MS: i64 = 86_400_000;
    let day_start = at.millis().div_euclid(DAY_MS) * DAY_MS;
    Timestamp::from_millis(day_start + (i64::from(retention_days) + 1) * DAY_MS)
}

/// A search events are indexed (and counted) under: every event, a tenant's, a target's or an
/// actor's (vendor-wide, or within one tenant).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    Tenant(TenantId),
    Target(Option<TenantId>, String),
    Actor(Option<TenantId>, String),
}

impl Scope {
    /// Its key in the stores: `*`, `t/<tenant>`, `o/<id>`, `a/<id>`, `t/<tenant>/o/<id>`, ...
    /// Tenant ids hold no `/`; target and actor ids come last.
    pub fn key(&self) -> String {
        let within = |tenant: &Option<TenantId>| {
            tenant.as_ref().map_or(String::new(), |t| format!("t/{t}/"))
        };
        match self {
            Self::All => "*".to_owned(),
            Self::Tenant(tenant) => format!("t/{tenant}"),
            Self::Target(tenant, id) => format!("{}o/{id}", within(tenant)),
            Self::Actor(tenant, id) => format!("{}a/{id}", within(tenant)),
        }
    }
}

/// A page of a search: `offset` events passed over, at most `count`, newest first unless
/// `oldest_first`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditQuery {
    pub scope: Scope,
    pub offset: u64,
    pub count: usize,
    pub oldest_first: bool,
}

/// The most events one page holds.
pub const MAX_PAGE: usize = 1000;

/// A page of events, and how many the search finds in all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub total: u64,
}

/// Which days a page reads, planned from how many events a search has each day (the stores
/// keep that count in the same write as each event): the page's `total`, and for each day it
/// reads, how many of that day's events (in the query's order) it passes over and at most how
/// many it takes. So a page reads its own events, not those before it on other days.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PagePlan {
    pub total: u64,
    pub days: Vec<DayRead>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRead {
    pub day: String,
    pub skip: u64,
    pub take: usize,
}

impl PagePlan {
    /// From `(day, count)` pairs (any order; days no longer kept already left out).
    pub fn new(mut counts: Vec<(String, u64)>, query: &AuditQuery) -> Self {
        counts.sort();
        if !query.oldest_first {
            counts.reverse();
        }
        let total = counts.iter().map(|(_, n)| n).sum();
        let (mut skip, mut left) = (query.offset, query.count);
        let mut days = Vec::new();
        for (day, n) in counts {
            if left == 0 {
                break;
            }
            if skip >= n {
                skip -= n;
                continue;
            }
            let take = usize::try_from(n - skip).unwrap_or(usize::MAX).min(left);
            days.push(DayRead { day, skip, take });
            left -= take;
            skip = 0;
        }
        Self { total, days }
    }
}

/// The most fields a vendor's event holds, and the most bytes of its JSON.
pub const MAX_VENDOR_FIELDS: usize = 50;
pub const MAX_VENDOR_EVENT_BYTES: usize = 8 * 1024;

/// An event the vendor records (`POST /audits/`, Frontegg's `sendAudit`): its tenant and
/// severity, its action and description if given, and fields of its own.
pub struct VendorEvent {
    pub tenant_id: TenantId,
    pub severity: Severity,
    pub action: Option<String>,
    pub description: Option<String>,
    pub fields: Map<String, Value>,
}

/// The service's own actions begin so; a vendor's event cannot take one of them.
const OWN_ACTIONS: [&str; 8] = [
    "apitoken.",
    "vendorcredential.",
    "portalsession.",
    "tenant.",
    "user.",
    "role.",
    "permission.",
    "configuration.",
];

/// The longest action and description a vendor's event holds, and field name.
const MAX_ACTION_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 1024;
const MAX_FIELD_NAME_CHARS: usize = 64;

/// Fields of our own (compared without case), which a vendor's event cannot set.
const RESERVED: [&str; 24] = [
    "id",
    "frontegg_id",
    "createdAt",
    "updatedAt",
    "tenantId",
    "severity",
    "action",
    "description",
    "actor",
    "target",
    "outcome",
    "ip",
    "userAgent",
    "keepUntil",
    "userId",
    "at",
    "fields",
    "issued",
    "minute",
    "refused",
    "ttl",
    "pk",
    "sk",
    "event",
];

/// A text a vendor's event holds as `name`: at most `max` characters, none of them a control
/// character.
fn vendor_text(name: &str, text: Option<String>, max: usize) -> Result<Option<String>, Invalid> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.chars().count() > max || text.trim() != text {
        return Err(Invalid(format!(
            "{name} must be at most {max} characters, with no space at either end"
        )));
    }
    rules::visible(name, text, rules::Reading::Key).map(Some)
}

/// Whether a vendor's `action` would read as one of the service's own: compared once widened
/// (NFKC: a fullwidth dot is a dot), lowercased, with letters of other scripts that look like
/// Latin ones read as those, and everything but letters, digits and dots left out.
fn poses_as_ours(action: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let skeleton: String = action
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'а' | 'ɑ' | 'α' => 'a',
            'с' | 'ϲ' => 'c',
            'ԁ' => 'd',
            'е' | 'ε' => 'e',
            'һ' => 'h',
            'і' | 'ι' | 'ı' | 'ӏ' => 'i',
            'ј' => 'j',
            'κ' | 'к' => 'k',
            'ո' => 'n',
            'о' | 'ο' | 'օ' => 'o',
            'р' | 'ρ' => 'p',
            'ԛ' => 'q',
            'ѕ' => 's',
            'т' | 'τ' => 't',
            'υ' | 'ս' => 'u',
            'ν' | 'ѵ' => 'v',
            'ԝ' => 'w',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            other => other,
        })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    OWN_ACTIONS.iter().any(|own| skeleton.starts_with(own))
}

/// The vendor's own fields: well named, none of the service's, and no secret in them.
fn check_fields(body: &Map<String, Value>) -> Result<(), Invalid> {
    let well_named = |name: &str| {
        (1..=MAX_FIELD_NAME_CHARS).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    if let Some(name) = body.keys().find(|k| !well_named(k)) {
        return Err(Invalid(format!(
            "field {:?} must be 1 to {MAX_FIELD_NAME_CHARS} letters, digits, '_', '-' or '.'",
            rules::excerpt(name)
        )));
    }
    let reserved = |name: &str| RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name));
    if let Some(name) = body.keys().find(|k| reserved(k)) {
        return Err(Invalid(format!("{name} is set by the service")));
    }
    // What a SIEM or a terminal shows of a value must be what it holds.
    if let Some((name, _)) = body.iter().find(|(_, value)| !readable(value)) {
        return Err(Invalid(format!(
            "{name} must not hold invisible, control or bidirectional control characters"
        )));
    }
    Ok(())
}

/// Whether every text in `value` shows what it holds (see [`rules::visible`]).
fn readable(value: &Value) -> bool {
    !any_text(value, &|text| {
        rules::visible("", text.to_owned(), rules::Reading::Prose).is_err()
    })
}

/// Whether `value` holds, anywhere, a credential (see [`super::secret::holds_credential`]).
fn holds_secret(value: &Value) -> bool {
    any_text(value, &super::secret::holds_credential)
}

/// Whether any text in `value`, however deep, is one `found` finds.
fn any_text(value: &Value, found: &dyn Fn(&str) -> bool) -> bool {
    match value {
        Value::String(text) => found(text),
        Value::Array(items) => items.iter().any(|item| any_text(item, found)),
        Value::Object(fields) => fields.values().any(|field| any_text(field, found)),
        _ => false,
    }
}

impl VendorEvent {
    /// The vendor's event from its body; 400 naming what does not fit.
    pub fn parse(mut body: Map<String, Value>) -> Result<Self, Invalid> {
        let size = serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len());
        if size > MAX_VENDOR_EVENT_BYTES {
            return Err(Invalid(format!(
                "An audit event must be at most {MAX_VENDOR_EVENT_BYTES} bytes"
            )));
        }
        // Anywhere: its own fields, `action` and `description` alike.
        if body.values().any(holds_secret) {
            return Err(Invalid("An audit event must not hold a secret".into()));
        }
        let text = |body: &mut Map<String, Value>, name: &str| match body.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(Invalid(format!("{name} must be a string"))),
        };
        let tenant = text(&mut body, "tenantId")?.ok_or(Invalid("tenantId is required".into()))?;
        let tenant_id = rules::field("tenantId", TenantId::parse(&tenant))?;
        let severity =
            text(&mut body, "severity")?.ok_or(Invalid("severity is required".into()))?;
        let severity = Severity::parse(&severity).ok_or_else(|| {
            Invalid("severity must be one of Info, Medium, High, Critical, Error".into())
        })?;
        let action = vendor_text("action", text(&mut body, "action")?, MAX_ACTION_CHARS)?;
        if let Some(own) = action.as_deref().filter(|a| poses_as_ours(a)) {
            return Err(Invalid(format!(
                "action {} is one of the service's own",
                rules::excerpt(own)
            )));
        }
        let description = text(&mut body, "description")?;
        let description = vendor_text("description", description, MAX_DESCRIPTION_CHARS)?;
        check_fields(&body)?;
        if body.len() > MAX_VENDOR_FIELDS {
            return Err(Invalid(format!(
                "An audit event holds at most {MAX_VENDOR_FIELDS} fields"
            )));
        }
        Ok(Self {
            tenant_id,
            severity,
            action,
            description,
            fields: body,
        })
    }

    /// The event, recorded by `by` at `at`.
    pub fn into_event(self, by: &Attribution, at: Timestamp, retention_days: u32) -> AuditEvent {
        let action = Action {
            name: self.action.as_deref().unwrap_or("vendor.event"),
            severity: self.severity,
            target: Target::new("tenant", &self.tenant_id),
            tenant_id: Some(self.tenant_id.clone()),
        };
        let mut event = AuditEvent::of(action, by, at, retention_days);
        event.description = self
            .description
            .unwrap_or_else(|| format!("The vendor's event: {}", event.action));
        event.fields = self.fields;
        event
    }
}

/// An event as Frontegg's audits API shows it (`frontegg_id`, `createdAt`, `tenantId`,
/// `severity`, `action`, `description`, `ip`, `userAgent`, `userId`), with ours beside them
/// and the vendor's own fields, if any, at the top level as Frontegg keeps them; the SIEM
/// stream carries the same.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView<'e> {
    #[serde(rename = "frontegg_id")]
    frontegg_id: &'e str,
    id: &'e str,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'e TenantId>,
    severity: Severity,
    action: &'e str,
    description: &'e str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'e str>,
    /// The acting user, as Frontegg names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'e UserId>,
    actor: &'e Actor,
    target: &'e Target,
    outcome: Outcome,
    /// Until when it is kept.
    keep_until: String,
    #[serde(flatten)]
    fields: &'e Map<String, Value>,
}

impl AuditEvent {
    /// The event as Frontegg's audits API shows it.
    pub fn view(&self) -> EventView<'_> {
        let event = self;
        let at = event.at.iso8601();
        EventView {
            frontegg_id: &event.id,
            id: &event.id,
            created_at: at.clone(),
            updated_at: at,
            tenant_id: event.tenant_id.as_ref(),
            severity: event.severity,
            action: &event.action,
            description: &event.description,
            ip: event.ip.map(|ip| ip.to_string()),
            user_agent: event.user_agent.as_deref(),
            user_id: match &event.actor {
                Actor::User { id, .. } => Some(id),
                _ => None,
            },
            actor: &event.actor,
            target: &event.target,
            outcome: event.outcome,
            keep_until: event.keep_until.iso8601(),
            fields: &event.fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_as_times_do() {
        let early = event_id(Timestamp::from_millis(1_700_000_000_000));
        let late = event_id(Timestamp::from_millis(1_700_000_000_001));
        assert!(early < late);
    }

    #[test]
    fn an_event_is_kept_from_the_start_of_its_day() {
        let at = Timestamp::from_millis(1_700_000_000_000); // 2023-11-14T22:13:20Z
        assert_eq!(day_of(at), "2023-11-14");
        let until = keep_until(at, 1);
        assert_eq!(until.iso8601(), "2023-11-16T00:00:00.000Z");
    }

    #[test]
    fn a_page_reads_only_the_days_it_shows() {
        let counts = vec![
            ("2026-01-01".to_owned(), 5),
            ("2026-01-03".to_owned(), 2),
            ("2026-01-02".to_owned(), 4),
        ];
        let query = |offset, count, oldest_first| AuditQuery {
            scope: Scope::All,
            offset,
            count,
            oldest_first,
        };
        let read = |day: &str, skip, take| DayRead {
            day: day.to_owned(),
            skip,
            take,
        };
        let newest = PagePlan::new(counts.clone(), &query(3, 4, false));
        assert_eq!(newest.total, 11);
        assert_eq!(
            newest.days,
            [read("2026-01-02", 1, 3), read("2026-01-01", 0, 1)]
        );
        let oldest = PagePlan::new(counts.clone(), &query(5, 10, true));
        assert_eq!(
            oldest.days,
            [read("2026-01-02", 0, 4), read("2026-01-03", 0, 2)]
        );
        assert!(PagePlan::new(counts, &query(11, 10, true)).days.is_empty());
    }

    #[test]
    fn a_vendor_event_cannot_set_the_services_fields() {
        let body = |extra: Value| -> Map<String, Value> {
            let mut body = serde_json::json!({"tenantId": "t1", "severity": "Info"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body.as_object().unwrap().clone()
        };
        assert!(VendorEvent::parse(body(serde_json::json!({"user": "x"}))).is_ok());
        let refused = VendorEvent::parse(body(serde_json::json!({"actor": "x"})));
        assert_eq!(refused.err().unwrap().0, "actor is set by the service");
        let mut bad = body(serde_json::json!({}));
        bad.insert("severity".into(), "Loud".into());
        assert!(VendorEvent::parse(bad).is_err());
    }
}
