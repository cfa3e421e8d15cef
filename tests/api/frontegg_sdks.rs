//! Frontegg's own SDKs, unchanged and configured only through their environment variables,
//! authenticate as the vendor against m2m-auth and validate JWTs from our exchange.

use crate::support::*;
use serde_json::{Value, json};

/// A tenant token with `reports.read`, a user token without it, a tampered and an expired token.
async fn tokens(t: &TestApp) -> Value {
    let vendor = t.vendor_token().await;
    t.reports_read_permission(&vendor).await;
    t.member(&vendor, "alice", "acme", json!([])).await;
    let exchange = |(client_id, secret): (String, String)| async move {
        let reply = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
        reply.body["accessToken"].as_str().unwrap().to_owned()
    };
    let tenant = exchange(
        t.tenant_token(&vendor, "acme", json!({"permissionIds": ["p-read"]}))
            .await,
    )
    .await;
    let user = exchange(t.user_token(&vendor, "acme", "alice", json!({})).await).await;
    let mut parts: Vec<String> = tenant.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered = parts.join(".");
    t.clock.advance_seconds(-3600);
    let expired = exchange(t.tenant_token(&vendor, "acme", json!({})).await).await;
    t.clock.advance_seconds(3600);
    let session = portal_session(t, &vendor).await;
    json!([
        {"name": "tenant", "token": tenant},
        {"name": "user", "token": user},
        {"name": "tenant_with_permission", "token": tenant, "permissions": ["reports.read"]},
        {"name": "user_without_permission", "token": user, "permissions": ["reports.read"]},
        {"name": "tampered", "token": tampered},
        {"name": "expired", "token": expired},
        {"name": "vendor_token", "token": vendor},
        {"name": "portal_session", "token": session},
    ])
}

/// A portal session of alice's in acme.
async fn portal_session(t: &TestApp, vendor: &str) -> String {
    let headers = [
        ("x-access-token", vendor),
        ("frontegg-tenant-id", "acme"),
        ("frontegg-user-id", "alice"),
    ];
    let opened = t.post("/portal/v1/sessions", &headers, &json!({})).await;
    let url = opened.body["url"].as_str().unwrap();
    let handoff = url.split_once("#handoff=").unwrap().1;
    let swapped = t
        .post(
            "/portal/v1/sessions/handoff",
            &[],
            &json!({"handoff": handoff}),
        )
        .await;
    swapped.body["accessToken"].as_str().unwrap().to_owned()
}

/// Runs a client program with the SDKs' environment pointing at the test server.
async fn run(t: &TestApp, program: String, script: &str, cases: &Value) -> Value {
    let vendor = (t.vendor_client_id.as_str(), t.vendor_secret.as_str());
    frontegg_client(&program, script, &t.base, vendor, cases).await
}

#[tokio::test]
async fn frontegg_node_sdk_validates_our_tokens() {
    let t = spawn_app(Backing::Embedded).await;
    let cases = tokens(&t).await;
    let results = run(&t, "node".into(), "node/check.js", &cases).await;
    assert_eq!(results["tenant"]["ok"], true, "{results}");
    assert_eq!(results["tenant"]["type"], "tenantApiToken");
    assert_eq!(results["tenant"]["tenantId"], "acme");
    assert_eq!(results["user"]["ok"], true, "{results}");
    assert_eq!(results["user"]["type"], "userApiToken");
    assert_eq!(results["tenant_with_permission"]["ok"], true, "{results}");
    for refused in [
        "user_without_permission",
        "tampered",
        "expired",
        "vendor_token",
        "portal_session",
    ] {
        assert_eq!(results[refused]["ok"], false, "{refused}: {results}");
    }
}

#[tokio::test]
async fn frontegg_python_sdk_and_fastapi_accept_our_claims() {
    let python = std::env::var("M2M_TEST_PYTHON").expect(
        "M2M_TEST_PYTHON is not set: run the suite with scripts/test.sh, which installs frontegg",
    );
    let t = spawn_app(Backing::Embedded).await;
    let cases = tokens(&t).await;
    let results = run(&t, python, "frontegg_python.py", &cases).await;
    assert_eq!(results["tenant"]["status"], 200, "{results}");
    assert_eq!(results["tenant"]["body"]["type"], "tenantApiToken");
    assert_eq!(results["tenant"]["body"]["applicationId"], "test-app");
    assert_eq!(results["user"]["status"], 200, "{results}");
    assert_eq!(results["user"]["body"]["type"], "userApiToken");
    assert_eq!(
        results["tenant_with_permission"]["status"], 200,
        "{results}"
    );
    assert_eq!(
        results["user_without_permission"]["status"], 403,
        "{results}"
    );
    for refused in ["tampered", "expired", "vendor_token", "portal_session"] {
        assert_eq!(results[refused]["status"], 401, "{refused}: {results}");
    }
}
