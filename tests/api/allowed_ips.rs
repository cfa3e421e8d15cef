//! IP allow-lists on the local server: a token with `allowedIps` exchanges and refreshes only
//! from within them (the peer's address, or with `M2M_TRUST_X_FORWARDED_FOR` the last
//! `X-Forwarded-For` entry); from elsewhere it gets the same 401 as a wrong secret. On both
//! stores. (On Lambda: `gateway_events::an_allow_list_is_checked_against_api_gateways_source_ip`.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn patch(t: &TestApp, vendor: &str, client_id: &str, body: Value) -> Reply {
    let url = format!("{}{TENANT_TOKENS}/{client_id}", t.base);
    let request = t.http.patch(url).header("x-access-token", vendor);
    t.send(request.header("frontegg-tenant-id", "acme").json(&body))
        .await
}

async fn a_token_works_only_from_its_allowed_addresses(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let body = json!({"allowedIps": ["203.0.113.0/24", "2001:db8::/32"]});
    let (client_id, secret) = t.tenant_token(&vendor, "acme", body).await;
    let refused = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "from 127.0.0.1");
    assert_eq!(
        refused.body,
        json!({"errors": ["Unauthorized"]}),
        "as a wrong secret"
    );
    let listing = t
        .get(
            TENANT_TOKENS,
            &[("x-access-token", &vendor), ("frontegg-tenant-id", "acme")],
        )
        .await;
    assert_eq!(
        listing.body[0]["allowedIps"],
        json!(["203.0.113.0/24", "2001:db8::/32"])
    );

    let widened = patch(
        t,
        &vendor,
        &client_id,
        json!({"allowedIps": ["127.0.0.1", "::1"]}),
    )
    .await;
    assert_eq!(widened.status, StatusCode::OK, "{:?}", widened.body);
    assert_eq!(
        widened.body["allowedIps"],
        json!(["127.0.0.1/32", "::1/128"])
    );
    let issued = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
    let refresh_token = issued.body["refreshToken"].as_str().unwrap().to_owned();

    patch(
        t,
        &vendor,
        &client_id,
        json!({"allowedIps": ["10.0.0.0/8"]}),
    )
    .await;
    let refreshed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh_token}))
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "a refresh is checked too"
    );
    let (status, _) = t.oauth_grant(&client_id, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "and the OAuth grant");

    patch(t, &vendor, &client_id, json!({"allowedIps": []})).await;
    let refreshed = t
        .post(REFRESH_V1, &[], &json!({"refreshToken": refresh_token}))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "[] lifts the list");
}
on_both_stores!(a_token_works_only_from_its_allowed_addresses);

async fn a_bad_allow_list_is_refused_naming_the_entry(t: &TestApp) {
    let vendor = t.vendor_token().await;
    t.tenant(&vendor, "acme").await;
    let headers = [
        ("x-access-token", vendor.as_str()),
        ("frontegg-tenant-id", "acme"),
    ];
    let many: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
    for (list, named) in [
        (json!(["10.0.0.0/8", "10.0.0.0/33"]), "10.0.0.0/33"),
        (json!(["300.1.1.1"]), "300.1.1.1"),
        (json!([5]), "5"),
        (json!("10.0.0.0/8"), "allowedIps"),
        (json!(many), "at most 20"),
    ] {
        let created = t
            .post(TENANT_TOKENS, &headers, &json!({"allowedIps": list}))
            .await;
        created.assert_refused(StatusCode::BAD_REQUEST, named, format_args!("{list}"));
    }
    let listing = t.get(TENANT_TOKENS, &headers).await;
    assert_eq!(listing.body, json!([]), "nothing was created");
    let (client_id, _) = t.tenant_token(&vendor, "acme", json!({})).await;
    let refused = patch(t, &vendor, &client_id, json!({"allowedIps": ["::1/200"]})).await;
    refused.assert_refused(StatusCode::BAD_REQUEST, "::1/200", "");
}
on_both_stores!(a_bad_allow_list_is_refused_naming_the_entry);

/// An IPv4-mapped entry is the IPv4 address or range it names, and admits that client (the
/// local server sees 127.0.0.1); `::/0` is every IPv6 address, so no IPv4 client.
async fn a_mapped_ipv4_entry_admits_the_ipv4_client_it_names(t: &TestApp) {
    let vendor = t.vendor_token().await;
    let body = json!({"allowedIps": ["::ffff:127.0.0.1"]});
    let (client_id, secret) = t.tenant_token(&vendor, "acme", body).await;
    let issued = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
    assert_eq!(issued.status, StatusCode::OK, "{:?}", issued.body);
    for (list, shown, admitted) in [
        ("::ffff:127.0.0.1", "127.0.0.1/32", true),
        ("::ffff:127.0.0.0/104", "127.0.0.0/8", true),
        ("::ffff:0:0/96", "0.0.0.0/0", true),
        ("0.0.0.0/0", "0.0.0.0/0", true),
        ("::/0", "::/0", false),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8", false),
    ] {
        let patched = patch(t, &vendor, &client_id, json!({"allowedIps": [list]})).await;
        assert_eq!(patched.status, StatusCode::OK, "{list}: {:?}", patched.body);
        assert_eq!(patched.body["allowedIps"], json!([shown]), "{list}");
        let exchanged = t.exchange(EXCHANGE_V1, &client_id, &secret).await;
        let expected = if admitted {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(exchanged.status, expected, "{list} from 127.0.0.1");
    }
}
on_both_stores!(a_mapped_ipv4_entry_admits_the_ipv4_client_it_names);

/// `X-Forwarded-For` counts only when the setting says a proxy is in front, and then only its
/// last entry (what that proxy added; the ones before are what the client claimed).
#[tokio::test]
async fn x_forwarded_for_is_believed_only_when_configured_and_only_its_last_entry() {
    for trusted in [false, true] {
        let t = spawn_app_with(Backing::Embedded, |s| s.trust_forwarded_for = trusted).await;
        let vendor = t.vendor_token().await;
        let body = json!({"allowedIps": ["203.0.113.0/24"]});
        let (client_id, secret) = t.tenant_token(&vendor, "acme", body).await;
        let credentials = json!({"clientId": client_id, "secret": secret});
        for (forwarded, through_proxy) in
            [("203.0.113.9", true), ("203.0.113.9, 198.51.100.4", false)]
        {
            let headers = [("x-forwarded-for", forwarded)];
            let reply = t.post(EXCHANGE_V1, &headers, &credentials).await;
            let allowed = trusted && through_proxy;
            let expected = if allowed {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                reply.status, expected,
                "trusted {trusted}, X-Forwarded-For {forwarded}"
            );
        }
    }
}
