//! The bodies of our own endpoints (rotate, the portal's hand-off, the configuration `PATCH`,
//! introspection) are strict: a field they do not take, a field given twice or `null` where a
//! value is expected is a 400 naming the field, and nothing happens. Frontegg's paths keep
//! ignoring fields they do not take. No refusal repeats more than an excerpt of what was sent.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const FORM: &str = "application/x-www-form-urlencoded";

async fn send_raw(
    t: &TestApp,
    (method, path): (Method, &str),
    headers: &[(&str, &str)],
    (content_type, body): (&str, String),
) -> Reply {
    let mut request = t
        .http
        .request(method, format!("{}{path}", t.base))
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    t.send(request).await
}

/// A 400 whose message names `field`.
fn assert_refused_naming(reply: &Reply, field: &str, sent: &str) {
    reply.assert_refused(StatusCode::BAD_REQUEST, field, format_args!("{sent}"));
}

async fn a_rotation_takes_grace_minutes_once_and_never_null(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let rotate = format!("{TENANT_TOKENS}/{client_id}/rotate");
    let post = |body: &str| {
        let body = ("application/json", body.to_owned());
        send_raw(t, (Method::POST, &rotate), &headers, body)
    };
    for (body, field) in [
        (r#"{"grace_minutes":0}"#, "grace_minutes"),
        (r#"{"graceMinutes":null}"#, "graceMinutes"),
        (r#"{"graceMinutes":0,"graceMinutes":10080}"#, "graceMinutes"),
        (r#"{"graceMinutes":0,"force":true}"#, "force"),
    ] {
        assert_refused_naming(&post(body).await, field, body);
    }
    let listed = t.get(TENANT_TOKENS, &headers).await;
    assert_eq!(listed.body[0]["rotatedAt"], Value::Null, "nothing rotated");
    let unchanged = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    assert_eq!(unchanged.status, StatusCode::OK, "{:?}", unchanged.body);

    let rotated = post(r#"{"graceMinutes":0}"#).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let ended = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    assert_eq!(
        ended.status,
        StatusCode::UNAUTHORIZED,
        "the grace asked for (none) is the grace applied"
    );
}
on_both_stores!(a_rotation_takes_grace_minutes_once_and_never_null);

async fn a_handoff_body_takes_the_handoff_alone_and_a_refusal_spends_nothing(t: &TestApp) {
    let vendor = t.as_vendor().await;
    let alice = vendor.tenant("acme").user("alice");
    alice.join(json!([])).await;
    let opened = alice.open_portal().await;
    let url = opened.body["url"].as_str().unwrap();
    let handoff = url.split_once("#handoff=").unwrap().1;
    for (body, field) in [
        (
            json!({"handoff": handoff, "remember": true}).to_string(),
            "remember",
        ),
        (r#"{"handoff":null}"#.to_owned(), "handoff"),
        (
            format!(r#"{{"handoff":"x","handoff":"{handoff}"}}"#),
            "handoff",
        ),
        ("{}".to_owned(), "handoff"),
    ] {
        let sent = ("application/json", body.clone());
        let path = (Method::POST, "/portal/v1/sessions/handoff");
        assert_refused_naming(&send_raw(t, path, &[], sent).await, field, &body);
    }
    let swapped = t
        .post(
            "/portal/v1/sessions/handoff",
            &[],
            &json!({"handoff": handoff}),
        )
        .await;
    assert_eq!(swapped.status, StatusCode::OK, "{:?}", swapped.body);
}
on_both_stores!(a_handoff_body_takes_the_handoff_alone_and_a_refusal_spends_nothing);

async fn a_configuration_patch_names_what_it_refuses_and_changes_nothing(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let headers = [("x-access-token", vendor.as_str())];
    let patch = |body: &str| {
        let body = ("application/json", body.to_owned());
        send_raw(t, (Method::PATCH, CONFIGURATIONS), &headers, body)
    };
    for (body, field) in [
        (r#"{"apiTokensEnabeld":false}"#, "apiTokensEnabeld"),
        (r#"{"apiTokensEnabled":null}"#, "apiTokensEnabled"),
        (
            r#"{"apiTokensEnabled":true,"apiTokensEnabled":false}"#,
            "apiTokensEnabled",
        ),
        (r#"{"tenantTokensEnabled":"no"}"#, "tenantTokensEnabled"),
        (r#"{"maxExpiresInMinutes":0}"#, "maxExpiresInMinutes"),
        (r#"{"maxExpiresInMinutes":"a week"}"#, "maxExpiresInMinutes"),
        (
            r##"{"branding":{"accentColor":"#1a56db","accentColor":"#ffd400"}}"##,
            "branding: accentColor is given twice",
        ),
        (
            r#"{"branding":{"theme":"light","theme":"dark"}}"#,
            "theme is given twice",
        ),
        (
            r#"{"branding":{"accentColor":null}}"#,
            "branding.accentColor must not be null",
        ),
    ] {
        assert_refused_naming(&patch(body).await, field, body);
    }
    let shown = t.get(CONFIGURATIONS, &headers).await.body;
    assert_eq!(
        [
            &shown["apiTokensEnabled"],
            &shown["tenantTokensEnabled"],
            &shown["maxExpiresInMinutes"]
        ],
        [&json!(true), &json!(true), &Value::Null],
        "nothing changed"
    );
    let capped = patch(r#"{"maxExpiresInMinutes":60}"#).await;
    assert_eq!(capped.body["maxExpiresInMinutes"], 60, "{:?}", capped.body);
    let lifted = patch(r#"{"maxExpiresInMinutes":null}"#).await;
    assert_eq!(lifted.status, StatusCode::OK, "null lifts the maximum");
    assert_eq!(lifted.body["maxExpiresInMinutes"], Value::Null);
}
on_both_stores!(a_configuration_patch_names_what_it_refuses_and_changes_nothing);

#[tokio::test]
async fn introspection_takes_one_token_in_a_form() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client_id, secret) = t.tenant_token(&vendor, "acme", json!({})).await;
    let issued = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    let jwt = issued.body["accessToken"].as_str().unwrap();
    let headers = [("x-access-token", vendor.as_str())];
    let path = || (Method::POST, "/oauth/introspect");
    for (content_type, body, named) in [
        ("application/json", json!({"token": jwt}).to_string(), FORM),
        (FORM, format!("token={jwt}&token=x"), "token"),
        (FORM, format!("token=x&token={jwt}"), "token"),
        (FORM, format!("token={jwt}&client_id=x"), "client_id"),
    ] {
        let reply = send_raw(&t, path(), &headers, (content_type, body.clone())).await;
        assert_refused_naming(&reply, named, &body);
    }
    let hinted = format!("token={jwt}&token_type_hint=access_token");
    let answer = send_raw(&t, path(), &headers, (FORM, hinted)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["active"], true);
}

/// Frontegg's clients send fields of their own: its paths take them and ignore them.
#[tokio::test]
async fn frontegg_paths_keep_ignoring_fields_they_do_not_take() {
    let t = spawn_app(Backing::Embedded).await;
    let vendor = t.vendor_token().await;
    let (client_id, _) = t
        .tenant_token(
            &vendor,
            "acme",
            json!({"description": "ci", "sdkVersion": 5}),
        )
        .await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let patched = send_raw(
        &t,
        (Method::PATCH, &format!("{TENANT_TOKENS}/{client_id}")),
        &headers,
        (
            "application/json",
            json!({"description": "ci2", "x": null}).to_string(),
        ),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["description"], "ci2");
}

async fn a_refusal_repeats_only_an_excerpt_of_what_was_sent(t: &TestApp) {
    let vendor = t.vendor_token().await;
    t.tenant(&vendor, "acme").await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let role_ids: Vec<String> = (0..50)
        .map(|i| format!("r{i}-{}", "x".repeat(100)))
        .collect();
    let long = "y".repeat(10_000);
    let unknown = t
        .post(TENANT_TOKENS, &headers, &json!({"roleIds": role_ids}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{:?}", unknown.body);
    assert!(unknown.error().contains("Unknown roleIds") && unknown.error().len() < 300);
    for (body, named) in [
        (json!({"expiresInMinutes": long}), "expiresInMinutes"),
        (json!({"allowedIps": [long]}), "allowedIps"),
        (json!({"roleIds": [long]}), "roleIds"),
    ] {
        let refused = t.post(TENANT_TOKENS, &headers, &body).await;
        assert_refused_naming(&refused, named, named);
        assert!(refused.error().len() < 300, "{named}: {}", refused.error());
    }
    let (client_id, _) = t.tenant_token(&vendor, "acme", json!({})).await;
    let rotate = format!("{TENANT_TOKENS}/{client_id}/rotate");
    let refused = t.post(&rotate, &headers, &json!({ long.clone(): 1 })).await;
    assert_refused_naming(&refused, "yyy", "a long unknown field");
    assert!(refused.error().len() < 300, "{}", refused.error());
}
on_both_stores!(a_refusal_repeats_only_an_excerpt_of_what_was_sent);
