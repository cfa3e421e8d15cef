//! Standard JWT and OpenID tooling verifies our tokens with no extra configuration: OpenID
//! discovery names the issuer and leads to the JWKS; PyJWT's `PyJWKClient` and openid-client
//! with jose (real, widely used clients) check the JWT.

use crate::support::*;
use m2m_shared::http::ENDPOINTS;
use m2m_shared::http::caller::Access;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// As deployed by default, with neither `M2M_ISSUER` nor `M2M_PUBLIC_URL`.
async fn spawn_default(backing: Backing) -> TestApp {
    spawn_app_with(backing, |settings| settings.issuer = None).await
}

#[tokio::test]
async fn by_default_the_issuer_is_the_url_discovery_is_served_under_and_every_tokens_iss() {
    let t = spawn_default(Backing::Embedded).await;
    let discovery = t.get(DISCOVERY, &[]).await;
    assert_eq!(discovery.body["issuer"], t.base.as_str());
    // The vendor token, issued and checked with that issuer, works.
    let vendor = t.as_vendor().await;
    let bot = vendor.tenant("acme").token(json!({})).await;
    let issued = t.exchange(EXCHANGE_V2, &bot.client_id, &bot.secret).await;
    let jwt = issued.body["access_token"].as_str().unwrap();
    let claims = t.app.credentials(&t.base).verify_access_token(jwt).unwrap();
    assert_eq!(claims.iss, t.base);
}

/// Discovery never trusts `Host` or `X-Forwarded-Proto`: any client sets them, and a cache in
/// front would keep what one of them made the document say.
#[tokio::test]
async fn discovery_names_the_service_whatever_host_a_client_sends() {
    let t = spawn_default(Backing::Embedded).await;
    let honest = t.get(DISCOVERY, &[]).await.body;
    let forged = [("host", "evil.example"), ("x-forwarded-proto", "https")];
    assert_eq!(t.get(DISCOVERY, &forged).await.body, honest);
    assert_eq!(honest["issuer"], t.base.as_str());
    let jwks = format!("{}/.well-known/jwks.json", t.base);
    assert_eq!(honest["jwks_uri"], jwks);
}

#[tokio::test]
async fn a_public_url_is_the_issuer_and_links_unless_m2m_issuer_names_another() {
    let public = "https://auth.example.com";
    for issuer in [None, Some("urn:example:m2m")] {
        let t = spawn_app_with(Backing::Embedded, |settings| {
            settings.issuer = issuer.map(str::to_owned);
            settings.public_url = Some(public.into());
        })
        .await;
        let discovery = t.get(DISCOVERY, &[]).await.body;
        assert_eq!(discovery["issuer"], issuer.unwrap_or(public));
        assert_eq!(
            discovery["jwks_uri"],
            format!("{public}/.well-known/jwks.json")
        );
        assert_eq!(discovery["token_endpoint"], format!("{public}/oauth/token"));
    }
}

/// openid-client (Node) discovers the service from its base URL, which it accepts only when
/// discovery's `issuer` is that URL, gets a token by either client authentication, and jose
/// verifies it through the discovered JWKS.
#[tokio::test]
async fn openid_client_discovers_the_service_by_its_url_and_verifies_its_tokens() {
    let t = spawn_default(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    vendor.permission("p-read", "reports.read").await;
    vendor.permission("p-write", "reports.write").await;
    let body = json!({"permissionIds": ["p-read", "p-write"]});
    let bot = vendor.tenant("acme").token(body).await;
    for (method, scope) in [("basic", None), ("post", Some("reports.write"))] {
        let answer = openid_client(&t, &bot.client_id, &bot.secret, method, scope).await;
        assert_eq!(answer["issuer"], t.base.as_str(), "{answer}");
        assert!(
            answer["tokenType"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case("bearer")
        );
        let claims = &answer["claims"];
        assert_eq!(
            (&claims["iss"], &claims["sub"]),
            (&json!(t.base), &json!(bot.client_id))
        );
        let expected = scope.map_or(json!(["reports.read", "reports.write"]), |s| json!([s]));
        assert_eq!(claims["permissions"], expected, "{method}");
    }

    // The library holds us to it: an issuer other than the URL is refused.
    let renamed = spawn_app(Backing::Embedded).await;
    let bot = renamed
        .tenant_token(&renamed.vendor_token().await, "acme", json!({}))
        .await;
    let refused = openid_client(&renamed, &bot.0, &bot.1, "basic", None).await;
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("issuer"), "{refused}");
}

/// `tests/clients/node/openid_client.mjs`'s answer: its JSON, or `{"error"}` on exit 3.
async fn openid_client(
    t: &TestApp,
    client_id: &str,
    secret: &str,
    method: &str,
    scope: Option<&str>,
) -> Value {
    let mut args = vec![
        t.base.clone(),
        client_id.into(),
        secret.into(),
        "test-api".into(),
    ];
    args.push(method.into());
    args.extend(scope.map(str::to_owned));
    let output = run_client("node", "node/openid_client.mjs", args).await;
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn discovery_names_the_issuer_the_jwks_and_rs256() {
    let t = spawn_app(Backing::Embedded).await;
    let discovery = t.get(DISCOVERY, &[]).await;
    assert_eq!(discovery.status, StatusCode::OK);
    assert_eq!(discovery.body["issuer"], ISSUER, "M2M_ISSUER");
    assert_eq!(
        discovery.body["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(
        discovery.body["token_endpoint"],
        format!("{}/oauth/token", t.base)
    );
    assert_eq!(
        discovery.body["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    let rfc8414 = t.get("/.well-known/oauth-authorization-server", &[]).await;
    assert_eq!(
        rfc8414.body, discovery.body,
        "RFC 8414 serves the same metadata"
    );
    let jwks_uri = discovery.body["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", t.base));
    let jwks: Value = reqwest::get(jwks_uri).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
}

#[tokio::test]
async fn pyjwt_verifies_a_token_through_discovery() {
    let python = std::env::var("M2M_TEST_PYTHON").expect(
        "M2M_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs PyJWT",
    );
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let issued = t.exchange(EXCHANGE_V2, &client_id, &secret).await;
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/clients/pyjwt_verify.py"
    );
    let base = t.base.clone();
    let run = |token: String| {
        let (python, base) = (python.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args([script, &base, &token, "test-api", "https://auth.test"])
                .output()
                .unwrap()
        })
    };
    let output = run(token.clone()).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (claims["sub"].as_str(), claims["tenantId"].as_str()),
        (Some(client_id.as_str()), Some("acme"))
    );

    // A tampered token is refused by the same client.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let output = run(parts.join(".")).await.unwrap();
    assert!(
        !output.status.success(),
        "PyJWT must refuse a tampered token"
    );
}

/// Who may call an operation, as the document says it: no security is anyone; a vendor token
/// with the tenant header is a tenant's owner, and with the user header too, a user's; a
/// portal session as an alternative opens either to the session's user.
fn documented_access(operation: &Value) -> Access {
    let secured = operation["security"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    let session = operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s.get("portalSession").is_some());
    let parameter = |name: &str| {
        operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["$ref"] == format!("#/components/parameters/{name}"))
    };
    let only_session = operation["security"]
        .as_array()
        .is_some_and(|s| s.len() == 1 && s[0].get("portalSession").is_some());
    match (secured, parameter("TenantId"), parameter("UserId"), session) {
        _ if only_session => Access::Session,
        (false, ..) => Access::Anyone,
        (true, false, _, true) => Access::VendorOrSession,
        (true, false, _, _) => Access::Vendor,
        (true, true, false, false) => Access::TenantOwner,
        (true, true, true, false) => Access::UserOwner,
        (true, true, false, true) => Access::TenantOwnerOrSession,
        (true, true, true, true) => Access::UserOwnerOrSession,
    }
}

#[tokio::test]
async fn the_openapi_document_names_every_endpoint_and_its_caller_and_is_valid_openapi_3_1() {
    let t = spawn_app(Backing::Embedded).await;
    let reply = t.get("/openapi.json", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    let document = reply.body;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let access = documented_access(operation);
            documented.insert((method.to_uppercase(), path.clone(), access));
        }
    }
    let routed: std::collections::BTreeSet<(String, String, Access)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned(), e.access()))
        .collect();
    assert_eq!(
        documented, routed,
        "the document and the endpoint table name the same operations, callers included"
    );

    let python = std::env::var("M2M_TEST_PYTHON").expect(
        "M2M_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs the validator",
    );
    let text = document.to_string();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(python)
            .args([
                "-c",
                "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))",
            ])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "not valid OpenAPI: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
