//! The self-service portal's sessions: opened by the vendor's backend for a signed-in user,
//! handed to the page in a URL fragment, and swapped there for a session token.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use std::sync::OnceLock;

use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY};
use axum::response::IntoResponse;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::caller::UserOwner;
use super::request::{Call, StrictBody};
use super::response::json;
use crate::app::App;
use crate::domain::GrantId;
use crate::domain::portal::{PortalUser, READ_AUDITS, TokenAction, TokenKind};
use crate::error::{Error, Result};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Opened {
    /// The portal page with the hand-off in its fragment, which no server log or `Referer`
    /// ever carries.
    url: String,
    expires_in: i64,
}

/// `POST /portal/v1/sessions`: the vendor opens the portal for a user of a tenant.
pub async fn open_session(app: Arc<App>, caller: UserOwner, call: Call) -> Result<Response> {
    let (handoff, expires_in) = app
        .portal()
        .by(call.attribution())
        .open(caller.tenant_id(), caller.user_id())
        .await?;
    let url = format!("{}/portal#handoff={}", call.base_url(), handoff.expose());
    json(StatusCode::CREATED, &Opened { url, expires_in })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffBody {
    handoff: String,
}

impl StrictBody for HandoffBody {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionView {
    access_token: String,
    expires_in: i64,
}

/// `POST /portal/v1/sessions/handoff`: the page swaps its hand-off, once, for a session.
pub async fn swap_handoff(app: Arc<App>, call: Call) -> Result<Response> {
    let body: HandoffBody = call.strict_json()?;
    let session = app
        .portal()
        .by(call.attribution())
        .swap(&body.handoff, &call.issuer(&app))
        .await?;
    let view = SessionView {
        access_token: session.access_token,
        expires_in: session.expires_in,
    };
    json(StatusCode::OK, &view)
}

/// What a session's user may do with one kind of token.
#[derive(Serialize)]
struct Abilities {
    /// The vendor lets these tokens be made and used.
    enabled: bool,
    read: bool,
    write: bool,
    delete: bool,
}

impl Abilities {
    fn of(user: &PortalUser, kind: TokenKind, enabled: bool) -> Self {
        Self {
            enabled,
            read: user.may(kind, TokenAction::Read),
            write: user.may(kind, TokenAction::Write),
            delete: user.may(kind, TokenAction::Delete),
        }
    }
}

#[derive(Serialize)]
struct GrantableRole {
    id: GrantId,
    key: String,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionInfo {
    tenant_id: String,
    user_id: String,
    /// The user's name (or email) and the tenant's name, for the page's header; null when the
    /// directory knows none.
    user_name: Option<String>,
    tenant_name: Option<String>,
    api_tokens_enabled: bool,
    personal_tokens: Abilities,
    tenant_tokens: Abilities,
    /// The user may read the tenant's audit trail: the page shows its activity.
    read_audits: bool,
    /// The roles the user holds, which are the ones a tenant token of theirs may carry.
    roles: Vec<GrantableRole>,
    max_expires_in_minutes: Option<u32>,
}

/// `GET /portal/v1/session`: who the session is, and what the page may offer them now.
pub async fn current_session(app: Arc<App>, user: PortalUser, _: Call) -> Result<Response> {
    let directory = app.directory();
    let (settings, roles, person, tenant) = tokio::try_join!(
        directory.token_settings(),
        directory.roles(),
        directory.user(&user.user_id),
        directory.tenant(&user.tenant_id),
    )?;
    let on = settings.api_tokens_enabled;
    let info = SessionInfo {
        tenant_id: user.tenant_id.to_string(),
        user_id: user.user_id.to_string(),
        user_name: person.and_then(|p| p.doc.display_name().map(str::to_owned)),
        tenant_name: tenant
            .map(|t| t.doc.name)
            .filter(|name| !name.trim().is_empty()),
        api_tokens_enabled: on,
        personal_tokens: Abilities::of(
            &user,
            TokenKind::Personal,
            on && settings.personal_tokens_enabled,
        ),
        tenant_tokens: Abilities::of(
            &user,
            TokenKind::Tenant,
            on && settings.tenant_tokens_enabled,
        ),
        read_audits: user.holds(READ_AUDITS),
        roles: roles
            .into_iter()
            .filter(|role| user.role_ids.contains(&role.id))
            .map(|role| GrantableRole {
                id: role.doc.id,
                key: role.doc.key.to_string(),
                name: role.doc.name,
            })
            .collect(),
        max_expires_in_minutes: settings.max_expires_in_minutes,
    };
    json(StatusCode::OK, &info)
}

/// The page: one HTML document with its style and script inline, each allowed by its hash.
struct Page {
    html: String,
    /// The policy without `frame-ancestors`, which comes from the settings.
    policy: String,
}

fn page_document() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        const HTML: &str = include_str!("../../portal/index.html");
        const CSS: &str = include_str!("../../portal/portal.css");
        const JS: &str = include_str!("../../portal/portal.js");
        let hash = |text: &str| {
            let digest = Sha256::digest(text.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        };
        Page {
            html: HTML.replace("/*STYLE*/", CSS).replace("/*SCRIPT*/", JS),
            policy: format!(
                "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
                 base-uri 'none'; form-action 'none'",
                hash(JS),
                hash(CSS)
            ),
        }
    })
}

/// `GET /portal`: the self-service page. It reads its hand-off from the URL fragment. Images
/// come from the page itself and data URLs, and from the logo's origin only when the vendor's
/// branding names one.
pub async fn page(app: Arc<App>, _: Call) -> Result<Response> {
    let page = page_document();
    let branding = app.directory().branding().await;
    let logo = branding
        .logo_origin()
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let policy = format!(
        "{}; img-src 'self' data:{logo}; frame-ancestors {}",
        page.policy,
        app.portal_frame_ancestors()
    );
    let mut response = page.html.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).map_err(Error::internal)?,
    );
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}
