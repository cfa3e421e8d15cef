//! A typed test client: `t.as_vendor().await.tenant("acme").user("alice")` instead of header
//! tuples. Each step carries the headers the contract names for that caller.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{EXCHANGE_V1, ISSUER, PERMISSIONS, ROLES, Reply, TENANT_TOKENS, TestApp, USER_TOKENS};

/// A token's clientId and secret, as its creation answered them.
#[derive(Clone, Debug)]
pub struct Issued {
    pub client_id: String,
    pub secret: String,
}

/// The vendor, holding a vendor token.
pub struct Vendor<'a> {
    pub t: &'a TestApp,
    pub token: String,
}

/// The vendor acting for one tenant (`frontegg-tenant-id`).
#[derive(Clone)]
pub struct Tenant<'a> {
    vendor: &'a Vendor<'a>,
    id: String,
}

/// The vendor acting for one user in one tenant (`frontegg-user-id` too).
pub struct Member<'a> {
    tenant: Tenant<'a>,
    id: String,
}

impl TestApp {
    pub async fn as_vendor(&self) -> Vendor<'_> {
        Vendor {
            t: self,
            token: self.vendor_token().await,
        }
    }

    /// Exchanges the credentials and returns the JWT's claims, verified.
    pub async fn claims_of(&self, issued: &Issued) -> Value {
        let reply = self
            .exchange(EXCHANGE_V1, &issued.client_id, &issued.secret)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let jwt = reply.body["accessToken"].as_str().unwrap();
        serde_json::to_value(
            self.app
                .credentials(ISSUER)
                .verify_access_token(jwt)
                .unwrap(),
        )
        .unwrap()
    }
}

fn created(reply: Reply) -> Issued {
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    Issued {
        client_id: reply.body["clientId"].as_str().unwrap().to_owned(),
        secret: reply.body["secret"].as_str().unwrap().to_owned(),
    }
}

impl<'a> Vendor<'a> {
    pub fn tenant(&'a self, id: &str) -> Tenant<'a> {
        Tenant {
            vendor: self,
            id: id.to_owned(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .t
            .http
            .request(method, format!("{}{path}", self.t.base))
            .header("x-access-token", &self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.t.send(request).await
    }

    /// Any vendor call to `path` (the directory's PUT and DELETE, for example).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, &[], body.as_ref()).await
    }

    /// Creates a role holding `permission_ids` (201 expected).
    pub async fn role(&self, id: &str, key: &str, permission_ids: Value) {
        let body = json!({"id": id, "key": key, "permissionIds": permission_ids});
        let reply = self.send(Method::POST, ROLES, &[], Some(&body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    /// Creates a permission (201 expected).
    pub async fn permission(&self, id: &str, key: &str) {
        let body = json!({"id": id, "key": key});
        let reply = self.send(Method::POST, PERMISSIONS, &[], Some(&body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
}

impl<'a> Tenant<'a> {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn user(&self, id: &str) -> Member<'a> {
        Member {
            tenant: self.clone(),
            id: id.to_owned(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let headers = [("frontegg-tenant-id", self.id.as_str())];
        self.vendor.send(method, path, &headers, body).await
    }

    /// Any call to `path` with this tenant's `frontegg-tenant-id`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body.as_ref()).await
    }

    /// Creates (or updates) the tenant: `PUT /identity/resources/tenants/v1/{id}`.
    pub async fn create(&self) {
        self.vendor.t.tenant(&self.vendor.token, &self.id).await;
    }

    /// Creates a tenant token, creating the tenant first.
    pub async fn create_token(&self, body: Value) -> Reply {
        self.create().await;
        self.send(Method::POST, TENANT_TOKENS, Some(&body)).await
    }

    /// Creates a tenant token (201 expected).
    pub async fn token(&self, body: Value) -> Issued {
        created(self.create_token(body).await)
    }

    pub async fn list_tokens(&self) -> Reply {
        self.send(Method::GET, TENANT_TOKENS, None).await
    }

    pub async fn patch_token(&self, client_id: &str, body: Value) -> Reply {
        let path = format!("{TENANT_TOKENS}/{client_id}");
        self.send(Method::PATCH, &path, Some(&body)).await
    }

    pub async fn delete_token(&self, client_id: &str) -> Reply {
        let path = format!("{TENANT_TOKENS}/{client_id}");
        self.send(Method::DELETE, &path, None).await
    }
}

impl Member<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let headers = [
            ("frontegg-tenant-id", self.tenant.id.as_str()),
            ("frontegg-user-id", self.id.as_str()),
        ];
        self.tenant.vendor.send(method, path, &headers, body).await
    }

    /// Any call to `path` with this user's and tenant's headers.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body.as_ref()).await
    }

    /// Makes the user a member of the tenant with `role_ids` (the directory's PUT user).
    pub async fn join(&self, role_ids: Value) {
        let t = self.tenant.vendor.t;
        t.member(
            &self.tenant.vendor.token,
            &self.id,
            &self.tenant.id,
            role_ids,
        )
        .await;
    }

    /// A tenant token created with this user as its creator (`createdByUserId`), at `path`.
    pub async fn create_tenant_token(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body)).await
    }

    pub async fn create_personal_token(&self, body: Value) -> Reply {
        self.send(Method::POST, USER_TOKENS, Some(&body)).await
    }

    /// Creates a personal token (201 expected).
    pub async fn personal_token(&self, body: Value) -> Issued {
        created(self.create_personal_token(body).await)
    }

    pub async fn list_personal_tokens(&self) -> Reply {
        self.send(Method::GET, USER_TOKENS, None).await
    }

    /// The vendor opens the self-service portal for this user: `POST /portal/v1/sessions`.
    pub async fn open_portal(&self) -> Reply {
        self.send(Method::POST, "/portal/v1/sessions", Some(&json!({})))
            .await
    }

    pub async fn patch_personal_token(&self, client_id: &str, body: Value) -> Reply {
        let path = format!("{USER_TOKENS}/{client_id}");
        self.send(Method::PATCH, &path, Some(&body)).await
    }

    pub async fn delete_personal_token(&self, client_id: &str) -> Reply {
        let path = format!("{USER_TOKENS}/{client_id}");
        self.send(Method::DELETE, &path, None).await
    }
}
