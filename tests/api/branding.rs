//! The portal as the vendor's: its brand, set through the configuration API (vendor only, each
//! field checked and refused by name), read by the page from the public configuration, the
//! logo's origin allowed in the page's CSP only when set; and people named, not numbered.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const CONFIGURATIONS: &str = "/identity/resources/configurations/v1";

async fn portal_policy(t: &TestApp) -> String {
    let page = t
        .http
        .get(format!("{}/portal", t.base))
        .send()
        .await
        .unwrap();
    page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_vendor_brands_the_portal_and_bad_values_are_refused_by_name() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    assert!(
        portal_policy(&t).await.contains("img-src 'self' data:;"),
        "no logo, no host"
    );
    let branding = json!({"displayName": "Hooli", "logoUrl": "https://cdn.hooli.example/logo.svg",
        "accentColor": "#1A56DB", "accentColorDark": "#8ab4f8", "theme": "auto"});
    let set = vendor
        .call(
            Method::PATCH,
            CONFIGURATIONS,
            Some(json!({"branding": branding})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let expected = json!({"displayName": "Hooli", "logoUrl": "https://cdn.hooli.example/logo.svg",
        "accentColor": "#1a56db", "accentColorDark": "#8ab4f8", "theme": "auto"});
    assert_eq!(set.body["branding"], expected);
    let public = t.get(&format!("{CONFIGURATIONS}/public"), &[]).await;
    assert_eq!(
        public.body["branding"], expected,
        "the page reads it without a session"
    );
    let policy = portal_policy(&t).await;
    assert!(
        policy.contains("img-src 'self' data: https://cdn.hooli.example;"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");

    let kept = t.get(&format!("{CONFIGURATIONS}/public"), &[]).await;
    assert_eq!(
        kept.body["branding"], expected,
        "a refused change changes nothing"
    );
    let anonymous = t
        .http
        .patch(format!("{}{CONFIGURATIONS}", t.base))
        .json(&json!({"branding": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "vendor only");
    let cleared = vendor
        .call(Method::PATCH, CONFIGURATIONS, Some(json!({"branding": {}})))
        .await;
    assert_eq!(cleared.body["branding"], json!({"theme": "auto"}));
    assert!(portal_policy(&t).await.contains("img-src 'self' data:;"));
}

/// A bad colour, a colour that would not read, an oversized or unsafe logo, an unknown mode:
/// each a 400 naming its field, and nothing changed.
#[tokio::test]
async fn bad_branding_is_refused_by_name() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let good = json!({"branding": {"displayName": "Hooli", "theme": "light"}});
    assert_eq!(
        vendor
            .call(Method::PATCH, CONFIGURATIONS, Some(good))
            .await
            .status,
        StatusCode::OK
    );
    let refusals = refusals();
    for (branding, says) in refusals {
        let reply = vendor
            .call(
                Method::PATCH,
                CONFIGURATIONS,
                Some(json!({"branding": branding})),
            )
            .await;
        reply.assert_refused(StatusCode::BAD_REQUEST, says, format_args!("{says}"));
    }
    let kept = t.get(&format!("{CONFIGURATIONS}/public"), &[]).await;
    let expected = json!({"displayName": "Hooli", "theme": "light"});
    assert_eq!(
        kept.body["branding"], expected,
        "a refused change changes nothing"
    );
}

/// Branding the configuration API refuses, and what its 400 says.
fn refusals() -> Vec<(Value, &'static str)> {
    let big_logo = format!("data:image/png;base64,{}", "A".repeat(40_000));
    vec![
        (
            json!({"accentColor": "blue"}),
            "branding.accentColor must be a hex colour",
        ),
        (
            json!({"accentColor": "#ffd400", "theme": "light"}),
            "branding.accentColor: #ffd400 contrasts",
        ),
        (
            json!({"accentColor": "#1a56db", "theme": "auto"}),
            "set accentColorDark",
        ),
        (
            json!({"accentColorDark": "#0b0b0b", "theme": "dark"}),
            "branding.accentColorDark: #0b0b0b contrasts",
        ),
        (
            json!({"logoUrl": big_logo}),
            "branding.logoUrl is larger than 32 KiB",
        ),
        (
            json!({"logoUrl": "http://cdn.hooli.example/logo.png"}),
            "branding.logoUrl must be an https",
        ),
        (
            json!({"logoUrl": "javascript:alert(1)"}),
            "branding.logoUrl",
        ),
        (
            json!({"logoUrl": "https://a;sandbox/x.png"}),
            "branding.logoUrl must be an https",
        ),
        (
            json!({"theme": "sepia"}),
            "branding.theme must be light, dark or auto",
        ),
        (json!({"displayName": ""}), "branding.displayName"),
        (json!({"colour": "#000"}), "branding must be"),
    ]
}

/// Tenant token listings name each token's maker: the user by name (else email), or, for a
/// token the vendor made with no user, its vendor credential by name.
#[tokio::test]
async fn listings_name_who_made_each_token() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.as_vendor().await;
    let acme = vendor.tenant("acme");
    acme.token(json!({"description": "by the vendor"})).await;
    let alice = acme.user("alice");
    alice.join(json!([])).await;
    let by_alice = alice
        .create_tenant_token(TENANT_TOKENS, json!({"description": "by alice"}))
        .await;
    assert_eq!(by_alice.status, StatusCode::CREATED, "{:?}", by_alice.body);
    let credentials = vendor
        .call(Method::GET, "/vendor/v1/credentials", None)
        .await;
    let name = credentials.body[0]["name"].as_str().unwrap().to_owned();
    let listed = acme.list_tokens().await;
    let made_by = |description: &str| {
        let tokens = listed.body.as_array().unwrap();
        let token = tokens
            .iter()
            .find(|t| t["description"] == description)
            .unwrap();
        token["createdByName"].clone()
    };
    assert_eq!(made_by("by the vendor"), json!(name), "{:?}", listed.body);
    assert_eq!(
        made_by("by alice"),
        json!("alice@example.test"),
        "{:?}",
        listed.body
    );
}
