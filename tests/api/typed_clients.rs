//! Frontegg's directory as the typed clients vendors run against Frontegg see it: the Rust
//! `frontegg` crate (MaterializeInc/rust-frontegg, as published), through its public API only,
//! manages tenants, their metadata and users against the running server.

use std::collections::BTreeSet;

use frontegg::{Client, ClientConfig, TenantRequest, UserListConfig, UserRequest};
use futures::TryStreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// Whether the client's call failed with a 404.
fn not_found<T: std::fmt::Debug>(result: Result<T, frontegg::Error>) -> bool {
    matches!(result, Err(frontegg::Error::Api(e)) if e.status_code == 404)
}

fn client(t: &TestApp) -> Client {
    Client::builder()
        .with_vendor_endpoint(t.base.parse().unwrap())
        .build(ClientConfig {
            client_id: t.vendor_client_id.clone(),
            secret_key: t.vendor_secret.clone(),
        })
}

/// The ids of every tenant, as the client lists them.
async fn tenant_ids(frontegg: &Client) -> BTreeSet<Uuid> {
    let tenants = frontegg.list_tenants().await.unwrap();
    tenants.into_iter().map(|t| t.id).collect()
}

/// Tenants: created with creator fields, read back, listed, their metadata set and removed
/// key by key, deleted; every answer parses into the crate's types.
async fn rust_frontegg_manages_tenants(t: &TestApp) {
    let frontegg = client(t);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let created = frontegg
        .create_tenant(&TenantRequest {
            id: a,
            name: "Acme",
            metadata: json!({"plan": "team"}),
            creator_name: Some("Carol Diaz"),
            creator_email: Some("carol@acme.test"),
        })
        .await
        .unwrap();
    assert_eq!((created.id, created.name.as_str()), (a, "Acme"));
    assert_eq!(created.metadata, json!({"plan": "team"}));
    assert_eq!(created.creator_email.as_deref(), Some("carol@acme.test"));
    assert_eq!(created.deleted_at, None);
    let age = time::OffsetDateTime::now_utc() - created.created_at;
    assert!(age.whole_seconds().abs() < 60, "createdAt is now: {age}");
    frontegg
        .create_tenant(&TenantRequest {
            id: b,
            name: "Globex",
            ..TenantRequest::default()
        })
        .await
        .unwrap();

    let read = frontegg.get_tenant(a).await.unwrap();
    assert_eq!(
        (read.name, read.created_at),
        ("Acme".into(), created.created_at)
    );
    assert_eq!(tenant_ids(&frontegg).await, BTreeSet::from([a, b]));

    let set = frontegg
        .set_tenant_metadata(a, &json!({"region": "eu"}))
        .await
        .unwrap();
    assert_eq!(set.metadata, json!({"plan": "team", "region": "eu"}));
    assert!(set.updated_at >= set.created_at);
    let removed = frontegg.delete_tenant_metadata(a, "plan").await.unwrap();
    assert_eq!(removed.metadata, json!({"region": "eu"}));

    frontegg.delete_tenant(b).await.unwrap();
    assert!(not_found(frontegg.get_tenant(b).await));
    assert_eq!(tenant_ids(&frontegg).await, BTreeSet::from([a]));
    let missing = frontegg.set_tenant_metadata(b, &json!({"x": 1})).await;
    assert!(not_found(missing));
}
on_both_stores!(rust_frontegg_manages_tenants);

/// A permission and a default role granting it, made through the API; the permission's id.
async fn default_role(t: &TestApp) -> String {
    let vendor = t.vendor_token().await;
    let permission = Uuid::new_v4().to_string();
    let role = Uuid::new_v4().to_string();
    let auth = [("x-access-token", vendor.as_str())];
    let made = t
        .post(
            PERMISSIONS,
            &auth,
            &json!({"id": permission, "key": "reports.read", "name": "Read reports"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let made = t
        .post(
            ROLES,
            &auth,
            &json!({"id": role, "key": "viewer", "name": "Viewer", "isDefault": true,
                    "level": 2, "permissionIds": [permission]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);

    permission
}

/// User `n`, created in `tenant_id` without roles, so with the default role granting
/// `permission`; read back as the client reads a user. Their id.
async fn create_user(frontegg: &Client, tenant_id: Uuid, n: u32, permission: &str) -> Uuid {
    let created = frontegg
        .create_user(&UserRequest {
            tenant_id,
            name: &format!("User {n}"),
            email: &format!("user{n}@example.test"),
            metadata: json!({"n": n}),
            skip_invite_email: true,
        })
        .await
        .unwrap();
    assert_eq!(created.metadata, json!({"n": n}));
    let roles: Vec<&str> = created.roles.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        roles,
        ["viewer"],
        "a user made without roles gets the default ones"
    );
    assert_eq!(
        (created.roles[0].level, created.roles[0].is_default),
        (2, true)
    );
    let keys: Vec<&str> = created.permissions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["reports.read"]);
    let read = frontegg.get_user(created.id).await.unwrap();
    assert_eq!(
        (read.email.as_str(), read.created_at),
        (created.email.as_str(), created.created_at)
    );
    assert_eq!(read.tenants.len(), 1);
    assert_eq!(read.tenants[0].tenant_id, tenant_id);
    assert_eq!(
        read.tenants[0].roles[0].permission_ids,
        [permission.parse::<Uuid>().unwrap()]
    );
    created.id
}

/// The ids of every user the client's paginated listing yields, and how many it yielded.
async fn listed(frontegg: &Client, config: UserListConfig) -> (usize, BTreeSet<Uuid>) {
    let users: Vec<frontegg::User> = frontegg.list_users(config).try_collect().await.unwrap();
    (users.len(), users.iter().map(|u| u.id).collect())
}

/// Users: created in a tenant with a default role, read back with their roles, listed page by
/// page across every tenant and within one, deleted.
async fn rust_frontegg_manages_users(t: &TestApp) {
    let permission = default_role(t).await;
    let frontegg = client(t);
    let (acme, globex) = (Uuid::new_v4(), Uuid::new_v4());
    for (id, name) in [(acme, "Acme"), (globex, "Globex")] {
        let tenant = TenantRequest {
            id,
            name,
            ..TenantRequest::default()
        };
        frontegg.create_tenant(&tenant).await.unwrap();
    }
    let mut in_acme = BTreeSet::new();
    for n in 0..7 {
        let tenant_id = if n < 5 { acme } else { globex };
        let id = create_user(&frontegg, tenant_id, n, &permission).await;
        if n < 5 {
            in_acme.insert(id);
        }
    }

    // Pages of 2: every user once, across 4 pages; pages of 3 of acme's 5 members.
    let (count, all) = listed(&frontegg, UserListConfig::default().page_size(2)).await;
    assert_eq!((count, all.len()), (7, 7));
    let config = UserListConfig::default().tenant_id(acme).page_size(3);
    assert_eq!(listed(&frontegg, config).await, (5, in_acme.clone()));

    let leaving = *in_acme.iter().next().unwrap();
    frontegg.delete_user(leaving).await.unwrap();
    assert!(not_found(frontegg.get_user(leaving).await));
    in_acme.remove(&leaving);
    let config = UserListConfig::default().tenant_id(acme);
    assert_eq!(listed(&frontegg, config).await, (4, in_acme));
}
on_both_stores!(rust_frontegg_manages_users);

/// The interpreter of the virtualenv scripts/test.sh installs openapi-python-client into, beside
/// the one `M2M_TEST_PYTHON` names.
fn codegen_bin(program: &str) -> std::path::PathBuf {
    let python = std::env::var("M2M_TEST_PYTHON")
        .expect("M2M_TEST_PYTHON names the test virtualenv's python (scripts/test.sh sets it)");
    let venv = std::path::Path::new(&python).ancestors().nth(2).unwrap();
    let bin = venv.join("codegen/bin").join(program);
    assert!(
        bin.exists(),
        "{bin:?}: run scripts/test.sh once to install openapi-python-client"
    );
    bin
}

/// A client generated by openapi-python-client from the server's own `/openapi.json` (typed
/// models both ways) runs the seed flow: vendor login, a permission, a role, a tenant, a user in
/// it, a tenant and a personal token, their exchanges, a refresh, the listing, and the tenant's
/// deletion, which ends its token.
#[tokio::test]
async fn a_client_generated_from_openapi_json_runs_the_seed_flow() {
    let t = spawn_app(Backing::Embedded).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, t.get("/openapi.json", &[]).await.body.to_string()).unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/openapi-python-client.yaml"
    );
    let generated = std::process::Command::new(codegen_bin("openapi-python-client"))
        .args(["generate", "--meta", "none", "--config", config, "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(dir.path().join("m2m_client"))
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");

    let python = codegen_bin("python");
    let vendor = (t.vendor_client_id.as_str(), t.vendor_secret.as_str());
    let cases = json!({"generated": dir.path()});
    let python = python.to_str().unwrap();
    let ran = frontegg_client(python, "generated_client.py", &t.base, vendor, &cases).await;
    assert_eq!(ran["steps"]["delete_tenant"], 204, "{ran}");
    assert_eq!(
        ran["user"],
        json!({"roles": ["viewer"], "permissions": ["reports.read"]})
    );
    assert_eq!(ran["readTenants"], json!(["acme"]));
    assert_eq!(ran["listed"], json!({"items": 1, "totalPages": 1}));
    assert_eq!(
        ran["tenantClaims"],
        json!({"type": "tenantApiToken", "tenantId": "acme", "roles": ["viewer"],
               "permissions": ["reports.read"]})
    );
    assert_eq!(ran["personalClaims"]["type"], "userApiToken");
    assert_eq!(ran["refreshed"], true);
    assert_eq!(ran["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(ran["afterDelete"], 401, "the tenant's token ended with it");
}
