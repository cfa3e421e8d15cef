//! The route table: every (method, path) the API serves, the endpoint it reaches and the Lambda
//! function that serves it. The local server, the Lambda binaries and the test that holds
//! `template.yaml` to the code all read this one table.

use lambda_http::http::Method;

use crate::error::{Error, Result};

/// One Lambda binary (and one function in `template.yaml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    VendorAuth,
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
}

impl Function {
    pub const ALL: [Function; 13] = [
        Self::VendorAuth,
        Self::Configurations,
        Self::Discovery,
        Self::CreateUserToken,
        Self::CreateTenantToken,
        Self::Exchange,
        Self::Refresh,
        Self::UserTokens,
        Self::TenantTokens,
        Self::Permissions,
        Self::Roles,
        Self::Tenants,
        Self::Users,
    ];

    /// Whether the function checks a clientId and secret (and so needs the decoy hash).
    pub fn checks_credentials(self) -> bool {
        matches!(self, Self::VendorAuth | Self::Exchange)
    }

    /// The binary's name under `functions/src/bin/`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::VendorAuth => "vendor-auth",
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
        }
    }
}

/// Which response casing an exchange answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Casing {
    /// v1: `accessToken`, `refreshToken`, `expiresIn`.
    Camel,
    /// v2: `access_token`, `refresh_token`, `expires_in`.
    Snake,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    VendorAuth,
    Configurations,
    Jwks,
    OpenIdConfiguration,
    OpenApi,
    CreateUserToken,
    CreateTenantToken,
    Exchange(Casing),
    Refresh(Casing),
    ListUserTokens,
    DeleteUserToken,
    ListTenantTokens,
    PatchTenantToken,
    DeleteTenantToken,
    CreatePermission,
    ListPermissions,
    DeletePermission,
    CreateRole,
    ListRoles,
    PatchRole,
    DeleteRole,
    PutTenant,
    DeleteTenant,
    PutUser,
    DeleteUser,
}

impl Endpoint {
    pub fn function(self) -> Function {
        match self {
            Self::VendorAuth => Function::VendorAuth,
            Self::Configurations => Function::Configurations,
            Self::Jwks | Self::OpenIdConfiguration | Self::OpenApi => Function::Discovery,
            Self::CreateUserToken => Function::CreateUserToken,
            Self::CreateTenantToken => Function::CreateTenantToken,
            Self::Exchange(_) => Function::Exchange,
            Self::Refresh(_) => Function::Refresh,
            Self::ListUserTokens | Self::DeleteUserToken => Function::UserTokens,
            Self::ListTenantTokens | Self::PatchTenantToken | Self::DeleteTenantToken => {
                Function::TenantTokens
            }
            Self::CreatePermission | Self::ListPermissions | Self::DeletePermission => {
                Function::Permissions
            }
            Self::CreateRole | Self::ListRoles | Self::PatchRole | Self::DeleteRole => {
                Function::Roles
            }
            Self::PutTenant | Self::DeleteTenant => Function::Tenants,
            Self::PutUser | Self::DeleteUser => Function::Users,
        }
    }
}

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

pub const ROUTES: &[Route] = &[
    route(Method::POST, "/auth/vendor", Endpoint::VendorAuth),
    route(
        Method::GET,
        "/identity/resources/configurations/v1",
        Endpoint::Configurations,
    ),
    route(Method::GET, "/.well-known/jwks.json", Endpoint::Jwks),
    route(
        Method::GET,
        "/.well-known/openid-configuration",
        Endpoint::OpenIdConfiguration,
    ),
    route(Method::GET, "/openapi.json", Endpoint::OpenApi),
    route(Method::POST, USER_TOKENS, Endpoint::CreateUserToken),
    route(Method::POST, TENANT_TOKENS, Endpoint::CreateTenantToken),
    route(
        Method::POST,
        "/identity/resources/tenants/api-tokens/v2",
        Endpoint::CreateTenantToken,
    ),
    route(
        Method::POST,
        "/identity/resources/auth/v1/api-token",
        Endpoint::Exchange(Casing::Camel),
    ),
    route(
        Method::POST,
        "/identity/resources/auth/v2/api-token",
        Endpoint::Exchange(Casing::Snake),
    ),
    route(
        Method::POST,
        "/identity/resources/auth/v1/api-token/token/refresh",
        Endpoint::Refresh(Casing::Camel),
    ),
    route(
        Method::POST,
        "/identity/resources/auth/v2/api-token/token/refresh",
        Endpoint::Refresh(Casing::Snake),
    ),
    route(Method::GET, USER_TOKENS, Endpoint::ListUserTokens),
    route(
        Method::DELETE,
        "/identity/resources/users/api-tokens/v1/{id}",
        Endpoint::DeleteUserToken,
    ),
    route(Method::GET, TENANT_TOKENS, Endpoint::ListTenantTokens),
    route(
        Method::PATCH,
        "/identity/resources/tenants/api-tokens/v1/{id}",
        Endpoint::PatchTenantToken,
    ),
    route(
        Method::DELETE,
        "/identity/resources/tenants/api-tokens/v1/{id}",
        Endpoint::DeleteTenantToken,
    ),
    route(Method::POST, PERMISSIONS, Endpoint::CreatePermission),
    route(Method::GET, PERMISSIONS, Endpoint::ListPermissions),
    route(
        Method::DELETE,
        "/identity/resources/permissions/v1/{id}",
        Endpoint::DeletePermission,
    ),
    route(Method::POST, ROLES, Endpoint::CreateRole),
    route(Method::GET, ROLES, Endpoint::ListRoles),
    route(
        Method::PATCH,
        "/identity/resources/roles/v1/{id}",
        Endpoint::PatchRole,
    ),
    route(
        Method::DELETE,
        "/identity/resources/roles/v1/{id}",
        Endpoint::DeleteRole,
    ),
    route(
        Method::PUT,
        "/identity/resources/tenants/v1/{id}",
        Endpoint::PutTenant,
    ),
    route(
        Method::DELETE,
        "/identity/resources/tenants/v1/{id}",
        Endpoint::DeleteTenant,
    ),
    route(
        Method::PUT,
        "/identity/resources/users/v1/{id}",
        Endpoint::PutUser,
    ),
    route(
        Method::DELETE,
        "/identity/resources/users/v1/{id}",
        Endpoint::DeleteUser,
    ),
];

const USER_TOKENS: &str = "/identity/resources/users/api-tokens/v1";
const TENANT_TOKENS: &str = "/identity/resources/tenants/api-tokens/v1";
const PERMISSIONS: &str = "/identity/resources/permissions/v1";
const ROLES: &str = "/identity/resources/roles/v1";

/// A matched route: its endpoint and the `{id}` segment, if the path has one.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub endpoint: Endpoint,
    /// The route's path pattern, as `template.yaml` spells it.
    pub pattern: &'static str,
    pub id: Option<String>,
}

/// Matches `path` against a pattern whose `{id}` segment takes any non-empty segment.
fn matches(pattern: &str, path: &str) -> Option<Option<String>> {
    let (mut pattern, mut path) = (pattern.split('/'), path.split('/'));
    let mut id = None;
    loop {
        match (pattern.next(), path.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) if !segment.is_empty() => id = Some(segment.to_owned()),
            (Some(expected), Some(segment)) if expected == segment => {}
            _ => return None,
        }
    }
}

/// Finds the endpoint for a request.
pub fn resolve(method: &Method, path: &str) -> Result<Resolved> {
    // Empty segments are ignored: a trailing slash (the Python SDK adds one) and the double
    // slash a base URL ending in '/' produces (as Frontegg's own default does).
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let path = format!("/{}", segments.join("/"));
    let path = path.as_str();
    let mut same_path = ROUTES
        .iter()
        .filter_map(|r| matches(r.path, path).map(|id| (r, id)))
        .peekable();
    if same_path.peek().is_none() {
        return Err(Error::NotFound(format!("No route for {path}")));
    }
    same_path
        .find(|(r, _)| r.method == method)
        .map(|(r, id)| Resolved {
            endpoint: r.endpoint,
            pattern: r.path,
            id,
        })
        .ok_or(Error::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_reach_the_same_endpoint() {
        let a = resolve(&Method::POST, "/auth/vendor").unwrap();
        let b = resolve(&Method::POST, "/auth/vendor/").unwrap();
        let c = resolve(&Method::POST, "//auth/vendor").unwrap();
        assert_eq!((&a, &a), (&b, &c));
    }

    #[test]
    fn id_segments_are_captured() {
        let r = resolve(&Method::DELETE, "/identity/resources/roles/v1/admin/").unwrap();
        assert_eq!(
            (r.endpoint, r.id.as_deref()),
            (Endpoint::DeleteRole, Some("admin"))
        );
        assert_eq!(
            resolve(&Method::DELETE, "/identity/resources/roles/v1/a/b")
                .unwrap_err()
                .status(),
            404
        );
        let list = resolve(&Method::GET, "/identity/resources/tenants/api-tokens/v1").unwrap();
        assert_eq!(list.endpoint, Endpoint::ListTenantTokens);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(resolve(&Method::GET, "/nope").unwrap_err().status(), 404);
        assert_eq!(
            resolve(&Method::GET, "/auth/vendor").unwrap_err().status(),
            405
        );
        assert_eq!(
            resolve(&Method::POST, "/auth/vendo").unwrap_err().status(),
            404
        );
    }

    #[test]
    fn every_function_serves_a_route() {
        for function in Function::ALL {
            assert!(ROUTES.iter().any(|r| r.endpoint.function() == function));
        }
    }
}
