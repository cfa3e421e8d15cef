//! The endpoint table: every (method, path) the API serves, the Lambda function that serves it,
//! who may call it and the handler. The Lambda binaries and the local server are built from this
//! table, and the tests hold `template.yaml`, `openapi.json` and the event files to it.
//!
//! Who may call is the row's [`Check`]: its handler takes the caller that check makes (a
//! [`Vendor`](super::caller::Vendor) only the vendor-token check can make), so no handler can
//! be reached without its row's check.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::Method;
use axum::response::{IntoResponse, Response};

use super::caller::{Access, Check, checks};
use super::request::Call;
use super::{
    audits, configuration, credentials, directory, discovery, health, oauth, portal, tokens,
    vendors,
};
use crate::app::App;
use crate::domain::ClientId;
use crate::domain::audit::Actor;
use crate::domain::portal::TokenAction;
use crate::error::{Error, Result};

/// One Lambda binary (and one function in `template.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    VendorAuth,
    VendorCredentials,
    Configurations,
    Discovery,
    CreateUserToken,
    CreateTenantToken,
    Exchange,
    Refresh,
    UserTokens,
    TenantTokens,
    Permissions,
    Roles,
    Tenants,
    Users,
    Portal,
    Audits,
    Health,
}

impl Function {
    /// Whether the function checks a clientId and secret (and so needs the decoy hash).
    pub fn checks_credentials(self) -> bool {
        matches!(self, Self::VendorAuth | Self::Exchange)
    }

    /// The binary's name under `functions/src/bin/`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::VendorAuth => "vendor-auth",
            Self::VendorCredentials => "vendor-credentials",
            Self::Configurations => "configurations",
            Self::Discovery => "discovery",
            Self::CreateUserToken => "create-user-token",
            Self::CreateTenantToken => "create-tenant-token",
            Self::Exchange => "exchange",
            Self::Refresh => "refresh",
            Self::UserTokens => "user-tokens",
            Self::TenantTokens => "tenant-tokens",
            Self::Permissions => "permissions",
            Self::Roles => "roles",
            Self::Tenants => "tenants",
            Self::Users => "users",
            Self::Portal => "portal",
            Self::Audits => "audits",
            Self::Health => "health",
        }
    }
}

/// What a handler's future yields.
pub type Reply = Pin<Box<dyn Future<Output = Result<Response>> + Send>>;

/// A row's handler behind its caller check.
pub trait Serve: Sync {
    /// Who may call it.
    fn access(&self) -> Access;
    /// Runs the check, then the handler with the caller it made.
    fn serve(&'static self, app: Arc<App>, call: Call, action: TokenAction) -> Reply;
}

/// A handler that takes the caller the check `C` makes.
pub struct Guarded<C: Check>(pub fn(Arc<App>, C::Caller, Call) -> Reply);

impl<C: Check> Serve for Guarded<C> {
    fn access(&self) -> Access {
        C::ACCESS
    }

    fn serve(&'static self, app: Arc<App>, mut call: Call, action: TokenAction) -> Reply {
        Box::pin(async move {
            let caller = C::check(&app, &call, action).await?;
            call.actor = C::actor(&caller);
            let Actor::User { tenant_id, .. } = &call.actor else {
                return (self.0)(app, caller, call).await;
            };
            // A portal session the handler refuses (403): the refusal is recorded. A handler
            // refuses to act on a token only once it found it among the session's tenant's.
            let (tenant, by) = (tenant_id.clone(), call.attribution());
            let token = call.path_id().and_then(|id| ClientId::parse(id).ok());
            let answer = (self.0)(Arc::clone(&app), caller, call).await;
            if let Err(refused @ Error::Forbidden(_)) = &answer {
                let name = super::caller::TOKEN_REFUSED;
                super::caller::record_refusal(&app, by, name, &tenant, token, refused).await;
            }
            answer
        })
    }
}

/// One row of the table.
pub struct Endpoint {
    pub method: Method,
    /// As `template.yaml` and `openapi.json` spell it; `{id}` takes one path segment.
    pub path: &'static str,
    pub function: Function,
    pub handler: &'static dyn Serve,
    /// How the row answers a failure, its handler's or its caller check's: the contract's
    /// `{"errors": [...]}`, or on `/oauth/token` OAuth's own shape.
    pub errors: fn(Error) -> Response,
}

impl Endpoint {
    pub fn access(&self) -> Access {
        self.handler.access()
    }
}

/// `row!(METHOD "path" => Function, caller: handler)`, and `, errors: answer` for a row
/// whose failures are not answered in the contract's shape.
macro_rules! row {
    (
        $method:ident $path:expr => $function:ident, Anyone: $handler:path
        $(, errors: $errors:path)?
    ) => {
        Endpoint {
            method: Method::$method,
            path: $path,
            function: Function::$function,
            handler: &Guarded::<checks::Anyone>(|app, (), call| Box::pin($handler(app, call))),
            errors: row!(@errors $($errors)?),
        }
    };
    ($method:ident $path:expr => $function:ident, $caller:ident: $handler:path) => {
        Endpoint {
            method: Method::$method,
            path: $path,
            function: Function::$function,
            handler: &Guarded::<checks::$caller>(|app, caller, call| {
                Box::pin($handler(app, caller, call))
            }),
            errors: row!(@errors),
        }
    };
    (@errors) => { <Error as IntoResponse>::into_response };
    (@errors $errors:path) => { $errors };
}

const USER_TOKENS: &str = "/identity/resources/users/api-tokens/v1";
const USER_TOKEN: &str = "/identity/resources/users/api-tokens/v1/{id}";
const TENANT_TOKENS: &str = "/identity/resources/tenants/api-tokens/v1";
const TENANT_TOKEN: &str = "/identity/resources/tenants/api-tokens/v1/{id}";
const PERMISSIONS: &str = "/identity/resources/permissions/v1";
const PERMISSION: &str = "/identity/resources/permissions/v1/{id}";
const ROLES: &str = "/identity/resources/roles/v1";
const ROLE: &str = "/identity/resources/roles/v1/{id}";
const TENANT: &str = "/identity/resources/tenants/v1/{id}";
/// Frontegg's own tenant paths; ours above stay as aliases.
const FRONTEGG_TENANTS: &str = "/tenants/resources/tenants/v1";
const FRONTEGG_TENANT: &str = "/tenants/resources/tenants/v1/{id}";
/// The vendor's own credentials.
const VENDOR_CREDENTIALS: &str = "/vendor/v1/credentials";
const VENDOR_CREDENTIAL: &str = "/vendor/v1/credentials/{id}";
const USERS: &str = "/identity/resources/users/v1";
const USER: &str = "/identity/resources/users/v1/{id}";
const USER_ROLES: &str = "/identity/resources/users/v1/{id}/roles";
const TENANT_METADATA: &str = "/tenants/resources/tenants/v1/{id}/metadata";

#[rustfmt::skip]
pub const ENDPOINTS: &[Endpoint] = &[
    row!(POST "/auth/vendor" => VendorAuth, Anyone: credentials::vendor_auth),
    row!(GET VENDOR_CREDENTIALS => VendorCredentials, Vendor: vendors::list),
    row!(POST VENDOR_CREDENTIALS => VendorCredentials, Vendor: vendors::create),
    row!(POST "/vendor/v1/credentials/{id}/rotate" => VendorCredentials, Vendor: vendors::rotate),
    row!(DELETE VENDOR_CREDENTIAL => VendorCredentials, Vendor: vendors::revoke),
    row!(POST "/identity/resources/auth/v1/api-token" => Exchange, Anyone: credentials::exchange_v1),
    row!(POST "/identity/resources/auth/v2/api-token" => Exchange, Anyone: credentials::exchange_v2),
    row!(POST "/oauth/token" => Exchange, Anyone: oauth::token, errors: oauth::token_error),
    row!(POST "/oauth/introspect" => Exchange, Vendor: oauth::introspect),
    row!(POST "/identity/resources/auth/v1/api-token/token/refresh" => Refresh, Anyone: credentials::refresh_v1),
    row!(POST "/identity/resources/auth/v2/api-token/token/refresh" => Refresh, Anyone: credentials::refresh_v2),

    row!(GET "/identity/resources/configurations/v1" => Configurations, Vendor: configuration::configurations),
    row!(PATCH "/identity/resources/configurations/v1" => Configurations, Vendor: configuration::patch_configurations),
    row!(POST "/identity/resources/configurations/v1" => Configurations, Vendor: configuration::post_configurations),
    row!(GET "/identity/resources/configurations/v1/public" => Configurations, Anyone: configuration::public_configuration),
    row!(GET "/.well-known/jwks.json" => Discovery, Anyone: discovery::jwks),
    row!(GET "/.well-known/openid-configuration" => Discovery, Anyone: discovery::openid_configuration),
    row!(GET "/.well-known/oauth-authorization-server" => Discovery, Anyone: discovery::oauth_authorization_server),
    row!(GET "/.well-known/revocations" => Discovery, Anyone: discovery::revocations),
    row!(GET "/openapi.json" => Discovery, Anyone: discovery::openapi),
    row!(GET "/health" => Health, Anyone: health::alive),
    row!(GET "/health/ready" => Health, Anyone: health::ready),

    row!(POST USER_TOKENS => CreateUserToken, UserOwnerOrSession: tokens::create_personal),
    row!(GET USER_TOKENS => UserTokens, UserOwnerOrSession: tokens::list_personal),
    row!(PATCH USER_TOKEN => UserTokens, UserOwnerOrSession: tokens::patch_personal),
    row!(DELETE USER_TOKEN => UserTokens, UserOwnerOrSession: tokens::delete_personal),
    row!(POST "/identity/resources/users/api-tokens/v1/{id}/rotate" => UserTokens, UserOwnerOrSession: tokens::rotate_personal),
    row!(GET "/identity/resources/users/api-tokens/v1/{id}/usage" => UserTokens, UserOwnerOrSession: tokens::usage_personal),
    row!(GET "/identity/resources/users/api-tokens/v1/usage" => UserTokens, UserOwnerOrSession: tokens::usage_of_personal),
    row!(POST TENANT_TOKENS => CreateTenantToken, TenantOwnerOrSession: tokens::create_tenant),
    row!(POST "/identity/resources/tenants/api-tokens/v2" => CreateTenantToken, TenantOwnerOrSession: tokens::create_tenant),
    row!(GET TENANT_TOKENS => TenantTokens, TenantOwnerOrSession: tokens::list_tenant),
    row!(PATCH TENANT_TOKEN => TenantTokens, TenantOwnerOrSession: tokens::patch_tenant),
    row!(DELETE TENANT_TOKEN => TenantTokens, TenantOwnerOrSession: tokens::delete_tenant),
    row!(POST "/identity/resources/tenants/api-tokens/v1/{id}/rotate" => TenantTokens, TenantOwnerOrSession: tokens::rotate_tenant),
    row!(GET "/identity/resources/tenants/api-tokens/v1/{id}/usage" => TenantTokens, TenantOwnerOrSession: tokens::usage_tenant),
    row!(GET "/identity/resources/tenants/api-tokens/v1/usage" => TenantTokens, TenantOwnerOrSession: tokens::usage_of_tenant),

    row!(POST "/portal/v1/sessions" => Portal, UserOwner: portal::open_session),
    row!(POST "/portal/v1/sessions/handoff" => Portal, Anyone: portal::swap_handoff),
    row!(GET "/portal/v1/session" => Portal, Session: portal::current_session),
    row!(GET "/portal" => Portal, Anyone: portal::page),

    row!(GET "/audits" => Audits, AuditReader: audits::list),
    row!(POST "/audits" => Audits, Vendor: audits::send),

    row!(POST PERMISSIONS => Permissions, Vendor: directory::create_permission),
    row!(GET PERMISSIONS => Permissions, Vendor: directory::list_permissions),
    row!(PATCH PERMISSION => Permissions, Vendor: directory::patch_permission),
    row!(DELETE PERMISSION => Permissions, Vendor: directory::delete_permission),
    row!(POST ROLES => Roles, Vendor: directory::create_role),
    row!(GET ROLES => Roles, Vendor: directory::list_roles),
    row!(PATCH ROLE => Roles, Vendor: directory::patch_role),
    row!(PUT "/identity/resources/roles/v1/{id}/permissions" => Roles, Vendor: directory::set_role_permissions),
    row!(DELETE ROLE => Roles, Vendor: directory::delete_role),
    row!(PUT TENANT => Tenants, Vendor: directory::put_tenant),
    row!(DELETE TENANT => Tenants, Vendor: directory::delete_tenant),
    row!(POST FRONTEGG_TENANTS => Tenants, Vendor: directory::create_tenant),
    row!(GET FRONTEGG_TENANTS => Tenants, Vendor: directory::list_tenants),
    row!(GET "/tenants/resources/tenants/v2" => Tenants, Vendor: directory::list_tenant_page),
    row!(GET FRONTEGG_TENANT => Tenants, Vendor: directory::get_tenant),
    row!(PUT FRONTEGG_TENANT => Tenants, Vendor: directory::put_frontegg_tenant),
    row!(DELETE FRONTEGG_TENANT => Tenants, Vendor: directory::delete_frontegg_tenant),
    row!(POST TENANT_METADATA => Tenants, Vendor: directory::set_tenant_metadata),
    row!(DELETE "/tenants/resources/tenants/v1/{id}/metadata/{key}" => Tenants, Vendor: directory::delete_tenant_metadata),
    row!(GET USERS => Users, Vendor: directory::list_users),
    row!(GET USER => Users, Vendor: directory::get_user),
    row!(GET "/identity/resources/vendor-only/users/v1/{id}" => Users, Vendor: directory::get_user_as_vendor),
    row!(PUT USER => Users, Vendor: directory::put_user),
    row!(DELETE USER => Users, Vendor: directory::delete_user),
    row!(POST USERS => Users, TenantOwner: directory::create_user),
    row!(POST "/identity/resources/users/v2" => Users, TenantOwner: directory::create_user),
    row!(POST USER_ROLES => Users, TenantOwner: directory::assign_roles),
    row!(DELETE USER_ROLES => Users, TenantOwner: directory::unassign_roles),
];

/// Every function, in the table's order.
pub fn functions() -> Vec<Function> {
    let mut all: Vec<Function> = Vec::new();
    for endpoint in ENDPOINTS {
        if !all.contains(&endpoint.function) {
            all.push(endpoint.function);
        }
    }
    all
}
