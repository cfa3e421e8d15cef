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
    Jwks,
    CreateUserToken,
    CreateTenantToken,
    Exchange,
    Refresh,
}

impl Function {
    pub const ALL: [Function; 7] = [
        Self::VendorAuth,
        Self::Configurations,
        Self::Jwks,
        Self::CreateUserToken,
        Self::CreateTenantToken,
        Self::Exchange,
        Self::Refresh,
    ];

    /// The binary's name under `functions/src/bin/`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::VendorAuth => "vendor-auth",
            Self::Configurations => "configurations",
            Self::Jwks => "jwks",
            Self::CreateUserToken => "create-user-token",
            Self::CreateTenantToken => "create-tenant-token",
            Self::Exchange => "exchange",
            Self::Refresh => "refresh",
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
    CreateUserToken,
    CreateTenantToken,
    Exchange(Casing),
    Refresh(Casing),
}

impl Endpoint {
    pub fn function(self) -> Function {
        match self {
            Self::VendorAuth => Function::VendorAuth,
            Self::Configurations => Function::Configurations,
            Self::Jwks => Function::Jwks,
            Self::CreateUserToken => Function::CreateUserToken,
            Self::CreateTenantToken => Function::CreateTenantToken,
            Self::Exchange(_) => Function::Exchange,
            Self::Refresh(_) => Function::Refresh,
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
        Method::POST,
        "/identity/resources/users/api-tokens/v1",
        Endpoint::CreateUserToken,
    ),
    route(
        Method::POST,
        "/identity/resources/tenants/api-tokens/v1",
        Endpoint::CreateTenantToken,
    ),
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
];

/// Finds the endpoint for a request; one trailing slash is ignored (the Python SDK adds it).
pub fn resolve(method: &Method, path: &str) -> Result<Endpoint> {
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let mut same_path = ROUTES.iter().filter(|r| r.path == path).peekable();
    if same_path.peek().is_none() {
        return Err(Error::NotFound(format!("No route for {path}")));
    }
    same_path
        .find(|r| r.method == method)
        .map(|r| r.endpoint)
        .ok_or(Error::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_reach_the_same_endpoint() {
        let a = resolve(&Method::POST, "/auth/vendor").unwrap();
        let b = resolve(&Method::POST, "/auth/vendor/").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(resolve(&Method::GET, "/nope").unwrap_err().status(), 404);
        assert_eq!(
            resolve(&Method::GET, "/auth/vendor").unwrap_err().status(),
            405
        );
        assert_eq!(
            resolve(&Method::POST, "/auth/vendor//")
                .unwrap_err()
                .status(),
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
