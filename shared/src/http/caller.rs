//! Who is calling: the checks an endpoint row names, each yielding a typed caller. The types
//! have private fields, so a handler that takes one can only be reached through its check.
//!
//! A kind of caller is defined here once: an [`Access`] variant, a marker in [`checks`] whose
//! [`Check`] implementation runs the check, and the caller type the handler receives. Adding a
//! kind touches this file and the rows that use it.

use std::future::Future;

use axum::http::HeaderMap;

use super::request::{Call, header};

use crate::app::App;
use crate::domain::audit::{Actor, Attribution, Target};
use crate::domain::ids::InvalidId;
use crate::domain::portal::{PortalUser, READ_AUDITS, TokenAction, TokenKind, permission_key};
use crate::domain::{ClientId, TenantId, UserId, VendorClaims};
use crate::error::{Error, Result};
use crate::operations::{Manager, Owner};

pub const TENANT_HEADER: &str = "frontegg-tenant-id";
pub const USER_HEADER: &str = "frontegg-user-id";

/// Who may call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Anyone,
    /// A vendor token whose credential, and the secret that issued it, still work.
    Vendor,
    /// A vendor token plus `frontegg-tenant-id` (and optionally `frontegg-user-id`, the user
    /// acting): manages the tenant's tokens.
    TenantOwner,
    /// A vendor token plus `frontegg-tenant-id` and `frontegg-user-id`: manages that user's
    /// personal tokens in that tenant.
    UserOwner,
    /// As `TenantOwner`, or a portal session whose user holds the action's permission.
    TenantOwnerOrSession,
    /// As `UserOwner`, or a portal session whose user holds the action's permission.
    UserOwnerOrSession,
    /// A portal session only.
    Session,
    /// A vendor token, or a portal session whose user holds [`READ_AUDITS`]: the session reads
    /// its own tenant's audit trail only.
    VendorOrSession,
}

/// A kind of caller: the check that makes one from a request, once, before its handler runs.
pub trait Check: Send + Sync + 'static {
    /// What a handler behind this check receives.
    type Caller: Send + 'static;
    /// What the endpoint table, the template's tests and OpenAPI call this kind.
    const ACCESS: Access;
    /// The caller, or the refusal (401, 403, 400 for a malformed header). `action` is what
    /// the request does to a token, for the checks that admit portal sessions.
    fn check(
        app: &App,
        call: &Call,
        action: TokenAction,
    ) -> impl Future<Output = Result<Self::Caller>> + Send;
    /// Who acts, as the audit trail records it.
    fn actor(caller: &Self::Caller) -> Actor;
}

/// The checks, one marker per kind of caller.
pub mod checks {
    use super::*;

    /// Anyone: no check.
    pub struct Anyone;
    /// The holder of a working vendor token.
    pub struct Vendor;
    /// The vendor, managing one tenant's tokens (`frontegg-tenant-id`).
    pub struct TenantOwner;
    /// The vendor, managing one user's personal tokens in a tenant.
    pub struct UserOwner;
    /// As [`TenantOwner`], or a portal session whose user holds the action's permission.
    pub struct TenantOwnerOrSession;
    /// As [`UserOwner`], or a portal session whose user holds the action's permission.
    pub struct UserOwnerOrSession;
    /// A portal session only.
    pub struct Session;
    /// The vendor, or a portal session allowed to read its tenant's audit trail.
    pub struct AuditReader;

    impl Check for Anyone {
        type Caller = ();
        const ACCESS: Access = Access::Anyone;
        async fn check(_: &App, _: &Call, _: TokenAction) -> Result<()> {
            Ok(())
        }
        fn actor((): &()) -> Actor {
            Actor::Anonymous
        }
    }

    impl Check for Vendor {
        type Caller = super::Vendor;
        const ACCESS: Access = Access::Vendor;
        async fn check(app: &App, call: &Call, _: TokenAction) -> Result<super::Vendor> {
            vendor(app, call).await
        }
        fn actor(caller: &super::Vendor) -> Actor {
            caller.actor()
        }
    }

    impl Check for TenantOwner {
        type Caller = super::TenantOwner;
        const ACCESS: Access = Access::TenantOwner;
        async fn check(app: &App, call: &Call, _: TokenAction) -> Result<super::TenantOwner> {
            let vendor = vendor(app, call).await?;
            tenant_owner_named(call.headers(), vendor.actor())
        }
        fn actor(caller: &super::TenantOwner) -> Actor {
            caller.actor.clone()
        }
    }

    impl Check for UserOwner {
        type Caller = super::UserOwner;
        const ACCESS: Access = Access::UserOwner;
        async fn check(app: &App, call: &Call, _: TokenAction) -> Result<super::UserOwner> {
            let vendor = vendor(app, call).await?;
            user_owner_named(call.headers(), vendor.actor())
        }
        fn actor(caller: &super::UserOwner) -> Actor {
            caller.actor.clone()
        }
    }

    impl Check for TenantOwnerOrSession {
        type Caller = super::TenantOwner;
        const ACCESS: Access = Access::TenantOwnerOrSession;
        async fn check(app: &App, call: &Call, action: TokenAction) -> Result<super::TenantOwner> {
            tenant_owner_or_session(app, call, action).await
        }
        fn actor(caller: &super::TenantOwner) -> Actor {
            caller.actor.clone()
        }
    }

    impl Check for UserOwnerOrSession {
        type Caller = super::UserOwner;
        const ACCESS: Access = Access::UserOwnerOrSession;
        async fn check(app: &App, call: &Call, action: TokenAction) -> Result<super::UserOwner> {
            user_owner_or_session(app, call, action).await
        }
        fn actor(caller: &super::UserOwner) -> Actor {
            caller.actor.clone()
        }
    }

    impl Check for Session {
        type Caller = PortalUser;
        const ACCESS: Access = Access::Session;
        async fn check(app: &App, call: &Call, _: TokenAction) -> Result<PortalUser> {
            session(app, call).await
        }
        fn actor(caller: &PortalUser) -> Actor {
            session_actor(caller)
        }
    }

    impl Check for AuditReader {
        type Caller = super::AuditReader;
        const ACCESS: Access = Access::VendorOrSession;
        async fn check(app: &App, call: &Call, _: TokenAction) -> Result<super::AuditReader> {
            if let Some(vendor) = vendor_if_any(app, call).await? {
                let actor = vendor.actor();
                return Ok(super::AuditReader {
                    actor,
                    tenant: None,
                });
            }
            let user = session_holding(app, call, READ_AUDITS).await?;
            Ok(super::AuditReader {
                actor: session_actor(&user),
                tenant: Some(user.tenant_id),
            })
        }
        fn actor(caller: &super::AuditReader) -> Actor {
            caller.actor.clone()
        }
    }
}

/// A reader of the audit trail: the vendor, who reads all of it, or a portal session's user,
/// who reads their tenant's.
#[derive(Debug)]
pub struct AuditReader {
    actor: Actor,
    tenant: Option<TenantId>,
}

impl AuditReader {
    /// The one tenant whose events the reader may see, if they may not see every tenant's.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }
}

/// The holder of a valid vendor token.
#[derive(Debug)]
pub struct Vendor {
    claims: VendorClaims,
}

impl Vendor {
    /// The clientId of the credential its token was issued from.
    pub fn vendor_id(&self) -> &str {
        &self.claims.vendor_id
    }

    fn actor(&self) -> Actor {
        Actor::Vendor {
            id: self.claims.vendor_id.clone(),
        }
    }
}

fn session_actor(user: &PortalUser) -> Actor {
    Actor::User {
        id: user.user_id.clone(),
        tenant_id: user.tenant_id.clone(),
    }
}

/// A tenant's token manager.
#[derive(Debug)]
pub struct TenantOwner {
    actor: Actor,
    tenant_id: TenantId,
    acting_user: Option<UserId>,
    /// Set when a portal session acts: the user, who grants only what they hold.
    session: Option<PortalUser>,
}

impl TenantOwner {
    /// Who acts on the tenant's tokens: the vendor, or the portal session's user.
    pub fn manager(&self) -> Manager {
        let owner = Owner::Tenant(self.tenant_id.clone());
        match &self.session {
            Some(user) => Manager::session(owner, user.clone()),
            None => Manager::vendor(owner),
        }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// The user acting for the tenant, recorded as a new token's `createdByUserId`.
    pub fn acting_user(&self) -> Option<&UserId> {
        self.acting_user.as_ref()
    }
}

/// A user managing their personal tokens in one tenant.
#[derive(Debug)]
pub struct UserOwner {
    actor: Actor,
    tenant_id: TenantId,
    user_id: UserId,
    /// Set when the user acts through a portal session.
    session: Option<PortalUser>,
}

impl UserOwner {
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// Who acts on the user's personal tokens: the vendor, or the user's portal session.
    pub fn manager(&self) -> Manager {
        let owner = Owner::User {
            tenant_id: self.tenant_id.clone(),
            user_id: self.user_id.clone(),
        };
        match &self.session {
            Some(user) => Manager::session(owner, user.clone()),
            None => Manager::vendor(owner),
        }
    }
}

/// The token in `Authorization: Bearer`.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>> {
    Ok(header(headers, "authorization")?.and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }))
}

/// The vendor token from `x-access-token` (what the SDKs send) or `Authorization: Bearer`,
/// whose credential and secret still work (one read of the credential).
async fn vendor(app: &App, call: &Call) -> Result<Vendor> {
    let headers = call.headers();
    let token = match header(headers, "x-access-token")? {
        Some(token) => token,
        None => bearer(headers)?.ok_or(Error::Unauthorized)?,
    };
    let vendors = app.vendors().by(call.attribution());
    let claims = vendors.verify_token(token, &call.issuer(app)).await?;
    Ok(Vendor { claims })
}

/// The tenant owner the `frontegg-*` headers name, for a caller already known to be the vendor.
fn tenant_owner_named(headers: &HeaderMap, actor: Actor) -> Result<TenantOwner> {
    Ok(TenantOwner {
        actor,
        tenant_id: required(headers, TENANT_HEADER, TenantId::parse)?,
        acting_user: parsed(headers, USER_HEADER, UserId::parse)?,
        session: None,
    })
}

/// The user owner the `frontegg-*` headers name, for a caller already known to be the vendor.
fn user_owner_named(headers: &HeaderMap, actor: Actor) -> Result<UserOwner> {
    Ok(UserOwner {
        actor,
        tenant_id: required(headers, TENANT_HEADER, TenantId::parse)?,
        user_id: required(headers, USER_HEADER, UserId::parse)?,
        session: None,
    })
}

/// The vendor, if the request carries a working vendor token; a store that cannot say is an
/// error, not a "no" (the request would otherwise be tried as a portal session and refused).
async fn vendor_if_any(app: &App, call: &Call) -> Result<Option<Vendor>> {
    match vendor(app, call).await {
        Ok(vendor) => Ok(Some(vendor)),
        Err(Error::Unauthorized) => Ok(None),
        Err(other) => Err(other),
    }
}

/// A portal session's user, resolved now; anything else is refused.
async fn session(app: &App, call: &Call) -> Result<PortalUser> {
    let token = bearer(call.headers())?.ok_or(Error::Unauthorized)?;
    app.portal().user(token, &call.issuer(app)).await
}

/// The portal session of a request that carries no valid vendor token, once its user is found
/// to hold `permission` (403 otherwise).
async fn session_holding(app: &App, call: &Call, permission: &str) -> Result<PortalUser> {
    // A refused vendor token stays refused: it is not tried as a session.
    if call.optional_header("x-access-token")?.is_some() {
        return Err(Error::Unauthorized);
    }
    let user = session(app, call).await?;
    if !user.holds(permission) {
        let refused = Error::Forbidden(format!("You need the permission {permission} to do this"));
        // Refused before anything is read: the refusal is the tenant's, whatever the path.
        let by = call.attribution_of(session_actor(&user));
        // A refused read of the trail is the session's; any other, of the tokens.
        let name = match permission {
            READ_AUDITS => "portalSession.refused",
            _ => TOKEN_REFUSED,
        };
        record_refusal(app, by, name, &user.tenant_id, None, &refused).await;
        return Err(refused);
    }
    Ok(user)
}

/// The event of a portal session refused an action on tokens.
pub(super) const TOKEN_REFUSED: &str = "apiToken.refused";

/// Records a 403 to a portal session (the refusal is the event): its target is `token`, one of
/// the session's tenant's tokens that a handler found and refused to act on, else the tenant.
/// At most a few per user and minute are recorded (see [`crate::operations::Audits::refused`]).
/// A failure to record it is logged; the request is refused either way.
pub(super) async fn record_refusal(
    app: &App,
    by: Attribution,
    name: &str,
    tenant: &TenantId,
    token: Option<ClientId>,
    refused: &Error,
) {
    let Error::Forbidden(why) = refused else {
        return;
    };
    let target = match token {
        Some(token) => Target::new("apiToken", token),
        None => Target::new("tenant", tenant),
    };
    let audits = app.audits().by(by);
    let recorded = audits.refused(name, target, tenant.clone(), why);
    if let Err(e) = recorded.await {
        tracing::warn!(error = %e, "a refusal could not be recorded");
    }
}

/// A tenant's owner, or a portal session acting for its tenant: the session decides the
/// tenant and the acting user, whatever the `frontegg-*` headers say.
async fn tenant_owner_or_session(
    app: &App,
    call: &Call,
    action: TokenAction,
) -> Result<TenantOwner> {
    if let Some(vendor) = vendor_if_any(app, call).await? {
        return tenant_owner_named(call.headers(), vendor.actor());
    }
    let permission = permission_key(TokenKind::Tenant, action);
    let user = session_holding(app, call, &permission).await?;
    Ok(TenantOwner {
        actor: session_actor(&user),
        tenant_id: user.tenant_id.clone(),
        acting_user: Some(user.user_id.clone()),
        session: Some(user),
    })
}

/// A user's owner (the vendor), or the user themselves through a portal session.
async fn user_owner_or_session(app: &App, call: &Call, action: TokenAction) -> Result<UserOwner> {
    if let Some(vendor) = vendor_if_any(app, call).await? {
        return user_owner_named(call.headers(), vendor.actor());
    }
    let permission = permission_key(TokenKind::Personal, action);
    let user = session_holding(app, call, &permission).await?;
    Ok(UserOwner {
        actor: session_actor(&user),
        tenant_id: user.tenant_id.clone(),
        user_id: user.user_id.clone(),
        session: Some(user),
    })
}

fn parsed<T>(
    headers: &HeaderMap,
    name: &str,
    parse: impl Fn(&str) -> Result<T, InvalidId>,
) -> Result<Option<T>> {
    header(headers, name)?
        .map(|text| parse(text).map_err(|e| Error::bad_request(format!("Header {name} {e}"))))
        .transpose()
}

fn required<T>(
    headers: &HeaderMap,
    name: &str,
    parse: impl Fn(&str) -> Result<T, InvalidId>,
) -> Result<T> {
    parsed(headers, name, parse)?
        .ok_or_else(|| Error::bad_request(format!("Missing header {name}")))
}
