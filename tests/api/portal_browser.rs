//! The self-service portal in a real browser (Debian's Chromium, driven by playwright-core):
//! both views, create, see once, copy, list, search, edit, delete, the tenant's activity a page
//! at a time, keyboard only, 375 px wide.
//! Screenshots of each view land in `target/portal-screenshots/`.

use serde_json::{Value, json};

use crate::portal::portal_roles;
use crate::support::client;
use crate::support::*;

/// 2 JWTs and a wrong secret in a minute for `token`, written by the next minute's use.
async fn use_twice_and_once_wrongly(t: &TestApp, token: &client::Issued) {
    use m2m_shared::domain::{Secret, SecretFormat, SecretKind};
    let wrong = Secret::generate_for_token(SecretKind::TenantToken, SecretFormat::Scannable);
    t.clock.to_next_minute();
    for secret in [token.secret.as_str(), token.secret.as_str(), wrong.expose()] {
        t.exchange(EXCHANGE_V1, &token.client_id, secret).await;
    }
    t.clock.to_next_minute();
    t.exchange(EXCHANGE_V1, &token.client_id, &token.secret)
        .await;
}

/// Sets up acme (alice administers tokens, paul only his own) and runs the browser script,
/// which opens each portal just before it visits it (a hand-off lives two minutes, and a busy
/// machine may take longer than that over the whole script); its findings.
async fn run_in_browser(t: &TestApp) -> Value {
    let vendor = t.as_vendor().await;
    portal_roles(&vendor).await;
    for (id, action) in [
        ("p-own-read", "read"),
        ("p-own-write", "write"),
        ("p-own-delete", "delete"),
    ] {
        vendor
            .permission(id, &format!("fe.secure.{action}.userApiTokens"))
            .await;
    }
    vendor
        .role(
            "self-service",
            "self-service",
            json!(["p-own-read", "p-own-write", "p-own-delete"]),
        )
        .await;
    let acme = vendor.tenant("acme");
    let github = json!([{"issuer": "https://token.actions.githubusercontent.com",
        "audience": "https://auth.example.com", "subject": "repo:acme/backup:ref:refs/heads/main"}]);
    let backup =
        json!({"description": "nightly backup", "roleIds": ["deployer"], "trustPolicies": github});
    let backup = acme.token(backup).await;
    use_twice_and_once_wrongly(t, &backup).await;
    // Enough activity for more than one page of it.
    for n in 0..12 {
        acme.token(json!({"description": format!("batch {n}")}))
            .await;
    }
    acme.user("alice")
        .join(json!(["token-admin", "deployer"]))
        .await;
    acme.user("paul").join(json!(["self-service"])).await;
    // People and tenants by their names.
    for (path, name) in [
        ("/identity/resources/users/v1/alice", "Alice Liddell"),
        ("/identity/resources/tenants/v1/acme", "Acme Inc."),
    ] {
        let body = Some(json!({"name": name}));
        let reply = vendor.call(reqwest::Method::PUT, path, body).await;
        assert!(reply.status.is_success(), "{:?}", reply.body);
    }
    let screenshots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/portal-screenshots");
    let config = json!({
        "base": t.base,
        "screenshots": screenshots,
        "vendorToken": vendor.token,
        "tenant": "acme",
        "users": {"admin": "alice", "personalOnly": "paul"},
    });
    let output = run_client("node", "node/portal_e2e.mjs", vec![config.to_string()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test]
async fn the_portal_works_in_a_real_browser() {
    let t = spawn_app(Backing::Embedded).await;
    let found = run_in_browser(&t).await;
    a_token_is_created_and_its_secret_shown_once(&found);
    tokens_are_listed_searched_edited_and_deleted(&found);
    the_portal_is_the_vendors_and_shows_each_tokens_use(&found);
    the_tenants_activity_is_shown_a_page_at_a_time(&found);
    access_keyboard_and_narrow_screens_hold(&found);
}

fn a_token_is_created_and_its_secret_shown_once(found: &Value) {
    assert_eq!(
        found["views"],
        json!(["Personal tokens", "Tenant tokens", "Activity"]),
        "{found}"
    );
    assert!(
        found["emptyState"]
            .as_str()
            .unwrap()
            .contains("access token"),
        "{found}"
    );
    for seen in [
        "secretShown",
        "curlHasBase",
        "copied",
        "escapeNeedsConfirmation",
        "secretGoneFromPage",
        "tenantSecretShown",
        "deleteNamesToken",
    ] {
        assert_eq!(found[seen], true, "{seen}: {found}");
    }
    assert_eq!(found["personalExchange"], 200, "the secret shown works");
}

fn tokens_are_listed_searched_edited_and_deleted(found: &Value) {
    assert_eq!(found["tenantExchange"], 200);
    assert_eq!(found["rotateNamesToken"], true, "{found}");
    assert_eq!(found["rotatedTitle"], "Copy the new secret");
    assert_eq!(found["rotatedSameClient"], true);
    assert_eq!(
        (&found["rotatedExchange"], &found["oldSecretAfterRotation"]),
        (&json!(200), &json!(401)),
        "rotated with no grace: the new secret works, the old one stops"
    );
    assert_eq!(
        found["tenantExchangeAfterDelete"], 401,
        "a deleted token stops"
    );
    assert_eq!(
        found["badgesOnCreation"], 0,
        "a week-long token is not \"Expires soon\" the moment it is made"
    );
    assert_eq!(
        (&found["searchRows"], &found["searchByClientIdRows"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(found["createdBy"], "Alice Liddell", "the maker by name");
    assert_eq!(
        found["signedInAs"],
        "Signed in as Alice Liddell in Acme Inc."
    );

    assert_eq!(
        found["trusted"],
        "Workloads of token.actions.githubusercontent.com for https://auth.example.com with sub \
         repo:acme/backup:ref:refs/heads/main",
        "a token's trust policies are listed"
    );
    let searched = found["tenantSearch"].as_array().unwrap();
    assert_eq!(searched.len(), 1, "{found}");
    assert!(searched[0].as_str().unwrap().contains("nightly backup"));
    assert_eq!(found["editedRoles"], "deployer, token-admin");
    assert_eq!(
        found["adminProblems"],
        json!([]),
        "no script errors or CSP refusals"
    );
}

fn the_tenants_activity_is_shown_a_page_at_a_time(found: &Value) {
    let newest = found["activityNewest"].as_str().unwrap();
    assert!(newest.contains("apiToken.deleted"), "{found}");
    assert_eq!(found["activityNewestBy"], "alice", "{found}");
    assert_eq!(found["activityFirstPage"], 20);
    assert_eq!(found["activityTimesDescend"], true, "newest first");
    let second = found["activitySecondRange"].as_str().unwrap();
    assert!(second.starts_with("Showing 21–"), "{second}");
    assert_eq!(found["activityNewerEnabled"], true);
    let mut of_bot = found["activityOfBot"].as_array().unwrap().clone();
    // Its exchanges' counts, if they crossed a minute, are recorded with a later use.
    of_bot.retain(|action| action != "apiToken.used");
    assert_eq!(
        Value::Array(of_bot),
        json!([
            "apiToken.deleted",
            "apiToken.rotated",
            "apiToken.changed",
            "apiToken.created"
        ]),
        "searched by the token's client ID: its life, newest first"
    );
    assert!(
        found["activityNone"]
            .as_str()
            .unwrap()
            .contains("no-such-token"),
        "{found}"
    );
    assert_eq!(found["personalOnlyAudits"], 403, "no fe.secure.read.audits");
}

fn access_keyboard_and_narrow_screens_hold(found: &Value) {
    assert!(
        found["reusedHandoff"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{found}"
    );
    assert_eq!(found["personalOnlyViews"], json!(["Personal tokens"]));
    assert_eq!(found["personalOnlyTenantApi"], 403);
    assert_eq!(found["focusInDialog"], "create-description");
    assert!(
        found["endedSession"]
            .as_str()
            .unwrap()
            .contains("open this page again"),
        "{found}"
    );
    assert_eq!(
        found["focusAfterDialog"], "create-personal",
        "focus returns"
    );
    assert_eq!(
        found["narrowOverflow"],
        json!([375, 375, 375]),
        "no horizontal scrolling"
    );
}

/// The vendor's brand (name, logo, accent in each mode, no serious or critical accessibility
/// violation), a token's use as the API counts it, and a month on, tokens to retire.
fn the_portal_is_the_vendors_and_shows_each_tokens_use(found: &Value) {
    let (issued, refused) = (&found["usageApi"]["issued"], &found["usageApi"]["refused"]);
    assert_eq!((issued, refused), (&json!(2), &json!(1)), "{found}");
    let summary = format!("{issued} JWTs issued and {refused} refused in the last 30 days");
    assert_eq!(
        found["usageSummary"],
        format!("{summary}."),
        "the chart's numbers are the API's"
    );
    assert_eq!(
        found["usageChartLabel"], summary,
        "the chart's text alternative"
    );
    assert_eq!(found["usageTableIssued"], json!(["2"]), "the table view");
    assert_eq!(
        found["sparkline"],
        json!({"label": summary, "bars": 30}),
        "beside Last used, each row's 30 days"
    );
    assert_eq!(
        found["monthOn"],
        json!({"unused": 1, "expired": "Expired"}),
        "a month on, a token never used is marked for retiring"
    );
    let refused = found["brandingRefused"].as_array().unwrap();
    for (reply, field) in refused
        .iter()
        .zip(["branding.accentColor", "branding.logoUrl"])
    {
        assert_eq!(reply["status"], 400, "{reply}");
        assert!(reply["says"].as_str().unwrap().contains(field), "{reply}");
    }
    assert_eq!(refused.len(), 2, "a bad colour and an oversized logo");
    // In the vendor's brand (kept through those refusals): its name and logo, its accent in
    // each mode, and no serious or critical accessibility violation in either.
    for (mode, accent) in [
        ("light", "rgb(109, 40, 217)"),
        ("dark", "rgb(196, 181, 253)"),
    ] {
        for width in [1280, 375] {
            let seen = &found["branded"][format!("{mode}-{width}")];
            assert_eq!(seen["title"], "Hooli API tokens", "{seen}");
            assert_eq!(seen["logo"], true, "{seen}");
            assert_eq!(seen["accent"], accent, "{seen}");
            assert_eq!(seen["violations"], json!([]), "axe-core: {seen}");
            assert_eq!(seen["problems"], json!([]), "{seen}");
        }
    }
}
