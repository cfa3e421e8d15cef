//! Backups and moves between stores, as an operator runs them: `m2m-admin export` of one
//! store, `m2m-admin import` into the other, and the data served there as it was.

use std::path::Path;
use std::process::Command;

use m2m_shared::domain::usage::{Counts, Day, DayUsage, MinuteUsage};
use m2m_shared::domain::{ClientId, Timestamp};
use m2m_shared::ports::{Clock, Spend};
use serde_json::{Value, json};

use crate::local_server::aws_env;
use crate::support::{TestApp, binary, moto_resources};
use crate::upgrades::{assert_serves, copy_of, embedded_app, scenario, serve_table};

/// `m2m-admin` with `args` and only `envs` (and PATH): its exit, stdout and stderr.
fn admin(args: &[&str], envs: &[(&str, String)]) -> (bool, String, String) {
    let output = Command::new(binary("m2m-admin"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (
        output.status.success(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// Runs `m2m-admin export` in `from`, writing `file`; the lines written.
fn export(from: &[(&str, String)], file: &Path) -> Vec<Value> {
    let (ok, stdout, stderr) = admin(&["export"], from);
    assert!(ok, "{stderr}");
    std::fs::write(file, &stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["format"], "m2m-auth-export", "{}", lines[0]);
    lines
}

/// Runs `m2m-admin import file` into `to`: its report.
fn import(to: &[(&str, String)], file: &Path) -> String {
    let (ok, stdout, stderr) = admin(&["import", file.to_str().unwrap()], to);
    assert!(ok, "{stdout}{stderr}");
    stdout
}

/// How many events of action `action` the trail of `t` holds.
async fn events_of(t: &TestApp, action: &str) -> usize {
    let vendor = t.vendor_token().await;
    let page = t
        .get("/audits?count=1000", &[("x-access-token", &vendor)])
        .await;
    (page.body["data"].as_array().unwrap().iter())
        .filter(|e| e["action"] == action)
        .count()
}

/// The embedded store exported and imported into DynamoDB: every token exchanges with the
/// same claims there, every dead credential stays dead, refresh tokens (made under the same
/// key) refresh and the spent one stays spent. No secret and no key is in the export. Run
/// again, the import leaves everything as it is. Then the other way round.
#[tokio::test]
async fn an_export_of_either_store_imports_into_the_other_as_it_was() {
    let keys = tempfile::tempdir().unwrap();
    m2m_shared::adapters::LocalKeys::in_folder(keys.path())
        .signer()
        .unwrap();
    let t = embedded_app(copy_of(keys.path(), ".")).await;
    let expected = scenario(&t).await;
    let kept = Kept::written(&t).await;
    let data = t.stop().await.unwrap();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("embedded.jsonl");
    let embedded_env = [("M2M_DATA_DIR", data.path().display().to_string())];
    let lines = export(&embedded_env, &file);
    let text = std::fs::read_to_string(&file).unwrap();
    for credential in expected["live"].as_array().unwrap() {
        let secret = credential["secret"].as_str().unwrap();
        assert!(!text.contains(secret), "no secret in an export");
    }
    assert!(!text.contains("PRIVATE KEY"), "no key in an export");
    let kinds: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    let all = [
        "audit",
        "directory",
        "spentRefresh",
        "spentWorkload",
        "token",
        "usage",
        "vendor",
    ];
    assert_eq!(kinds, all.into(), "every kind of record");

    let (table, key_id) = moto_resources().await;
    let dynamodb_env = aws_env(&table, &key_id);
    let first = import(&dynamodb_env, &file);
    let again = import(&dynamodb_env, &file);
    assert!(again.contains("were there already"), "{first} then {again}");
    // Exported again before anything uses its credentials (which would spend its refresh
    // tokens), to carry it back.
    let back_file = files.path().join("dynamodb.jsonl");
    export(&dynamodb_env, &back_file);
    let moved = serve_table(&table, &key_id, copy_of(keys.path(), ".")).await;
    assert_serves(&moved, &expected).await;
    kept.holds_in(&moved).await;
    // Each token once (the scenario's three and the workload one), however often the import ran.
    assert_eq!(events_of(&moved, "apiToken.imported").await, 4);

    // Back: DynamoDB's export into a new embedded store (its key copied beside it first).
    let back = copy_of(keys.path(), ".");
    let back_env = [("M2M_DATA_DIR", back.path().display().to_string())];
    import(&back_env, &back_file);
    let t = embedded_app(back).await;
    assert_serves(&t, &expected).await;
    kept.holds_in(&t).await;
}

/// What an export carries beside the scenario's credentials: a token's day counts, and a
/// workload token taken through its trust policy (which must stay taken wherever it goes).
struct Kept {
    client_id: ClientId,
    policy: String,
    mark: String,
    until: Timestamp,
    days: Vec<DayUsage>,
}

impl Kept {
    async fn written(t: &TestApp) -> Self {
        let vendor = t.vendor_token().await;
        let policy = json!({"issuer": "https://token.actions.githubusercontent.com",
            "audience": "https://m2m.example", "subject": "repo:acme/deploy:ref:refs/heads/main"});
        let body = json!({"description": "workload", "trustPolicies": [policy]});
        let (client_id, _) = t.tenant_token(&vendor, "initech", body).await;
        let client_id = ClientId::parse(&client_id).unwrap();
        let token = t.store.token(&client_id).await.unwrap().unwrap();
        let policy = token.trust_policies[0].id.clone();
        let mark = "a-workload-tokens-digest".to_owned();
        let until = Timestamp::from_millis(t.clock.now().millis() + 3_600_000);
        let spent = t
            .store
            .spend_workload_token(&client_id, (0, &policy), &mark, until);
        assert_eq!(spent.await.unwrap(), Spend::Spent);
        let mut counts = Counts::default();
        (counts.issued, counts.refused.secret) = (7, 2);
        let minute = MinuteUsage {
            client_id,
            tenant_id: token.tenant_id.clone(),
            minute: t.clock.now(),
            counts,
        };
        t.store.add_usage(&minute).await.unwrap();
        let days = t.store.usage_since(&client_id, Day(0)).await.unwrap();
        assert_eq!(days.len(), 1, "{days:?}");
        Self {
            client_id,
            policy,
            mark,
            until,
            days,
        }
    }

    /// `moved` serves the same day counts, and the workload token stays taken.
    async fn holds_in(&self, moved: &TestApp) {
        let days = moved
            .store
            .usage_since(&self.client_id, Day(0))
            .await
            .unwrap();
        assert_eq!(days, self.days, "the day counts carried over");
        let again = moved.store.spend_workload_token(
            &self.client_id,
            (0, &self.policy),
            &self.mark,
            self.until,
        );
        assert_eq!(again.await.unwrap(), Spend::Replayed, "still taken");
    }
}

/// An import refuses what is not an export, an export of a later release, and a bad line
/// (naming the file and line), each with exit status 1, and leaves nothing half-done.
#[test]
fn an_import_refuses_what_it_cannot_load_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "M2M_DATA_DIR",
        dir.path().join("data").display().to_string(),
    )];
    let header = r#"{"format":"m2m-auth-export","version":1,"recordFormat":1}"#;
    let later = r#"{"format":"m2m-auth-export","version":1,"recordFormat":99}"#;
    let token = |allowed_ips: &str| {
        format!(
            r#"{{"kind":"token","record":{{"clientId":"0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
            "tenantId":"acme","metadata":{{}},"roleIds":[],"permissionIds":[],"createdAt":1,
            "secretHash":"$2b$04$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyzab",
            "allowedIps":{allowed_ips}}}}}"#
        )
        .replace('\n', "")
    };
    let garbage = format!("{header}\n{}\n", token(r#"["garbage"]"#));
    let wide = format!("{header}\n{}\n", token(r#"["10.0.0.0/33"]"#));
    let day = format!(
        "{header}\n{}\n",
        r#"{"kind":"usage","clientId":"0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11","day":-1,"counts":{}}"#
    );
    for (content, says) in [
        (day.as_str(), "a usage day out of range: -1"),
        (garbage.as_str(), "allowedIps holds \"garbage\""),
        (wide.as_str(), "allowedIps holds"),
        ("clientId,secret\n", "not an export"),
        (&format!("{later}\n") as &str, "later release"),
        (
            &format!("{header}\n{{\"kind\":\"token\"}}\n"),
            "export.jsonl:2",
        ),
        (
            &format!("{header}\n{{\"kind\":\"comet\"}}\n"),
            "export.jsonl:2",
        ),
    ] {
        let file = dir.path().join("export.jsonl");
        std::fs::write(&file, content).unwrap();
        let (ok, _, stderr) = admin(&["import", file.to_str().unwrap()], &env);
        assert!(!ok, "{content}");
        assert!(stderr.contains(says), "{content}: {stderr}");
    }
}
