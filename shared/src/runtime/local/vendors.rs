//! `m2m-admin vendors list|create|rotate|revoke`: the vendor's credentials, managed through the
//! running service (`/vendor/v1/credentials`) with one of them, so nothing stops the server or
//! waits for its store's lock, and a deployed service is managed the same way.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::fail;
use crate::domain::ClientId;

pub(super) const USAGE: &str =
    "  vendors list                Lists the vendor credentials (clientId, name, when created and
                              last used), through the running server.
  vendors create NAME         Creates a named vendor credential and prints its secret, once.
  vendors rotate CLIENT_ID [--grace-minutes N]
                              Gives it a new secret, printed once; the old one keeps logging in
                              for the grace (default 60, at most 10080; 0 ends it and its vendor
                              tokens now).
  vendors revoke CLIENT_ID    Revokes it: its secret and its vendor tokens stop at once. The
                              last credential cannot be revoked.
                 The vendors commands call the server at M2M_URL (default
                 http://127.0.0.1:8080) as the vendor credential M2M_VENDOR_CLIENT_ID and
                 M2M_VENDOR_SECRET, or M2M_VENDOR_SECRET_FILE naming a file whose first
                 line is the secret (/dev/stdin to pipe it in).";

/// What `m2m-admin vendors ...` asks for.
enum Action {
    List,
    Create(String),
    Rotate(String, Option<u32>),
    Revoke(String),
}

impl Action {
    fn parse(args: &[String]) -> Option<Self> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Some(match args.as_slice() {
            ["list"] => Self::List,
            ["create", name] => Self::Create((*name).to_owned()),
            ["rotate", id] => Self::Rotate((*id).to_owned(), None),
            ["rotate", id, "--grace-minutes", minutes] => {
                Self::Rotate((*id).to_owned(), Some(minutes.parse().ok()?))
            }
            ["revoke", id] => Self::Revoke((*id).to_owned()),
            _ => return None,
        })
    }
}

/// Runs `m2m-admin vendors <args>`; 2 for a usage error.
pub(super) async fn run(args: &[String], usage: &str) -> ExitCode {
    let Some(action) = Action::parse(args) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    match act(action).await {
        Ok(told) => {
            println!("{told}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format_args!("{e}")),
    }
}

async fn act(action: Action) -> Result<String, String> {
    use reqwest::Method;
    let path = |id: &str, rest: &str| -> Result<String, String> {
        let id = ClientId::parse(id).map_err(|_| format!("{id:?} is not a clientId"))?;
        Ok(format!("{CREDENTIALS}/{id}{rest}"))
    };
    // Checked before logging in, so a typo costs no login.
    let (method, path, body) = match &action {
        Action::List => (Method::GET, CREDENTIALS.to_owned(), None),
        Action::Create(name) => (
            Method::POST,
            CREDENTIALS.to_owned(),
            Some(json!({"name": name})),
        ),
        Action::Rotate(id, grace) => {
            let body = grace.map_or_else(|| json!({}), |m| json!({"graceMinutes": m}));
            (Method::POST, path(id, "/rotate")?, Some(body))
        }
        Action::Revoke(id) => (Method::DELETE, path(id, "")?, None),
    };
    let answer = Api::login().await?.call(method, &path, body).await?;
    Ok(match action {
        Action::List => listing(&answer),
        Action::Create(_) => shown_once(&answer, "Created"),
        Action::Rotate(..) => {
            let old = answer["previousSecretExpiresAt"].as_str().map_or_else(
                || "The old secret and its vendor tokens stopped now.".to_owned(),
                |at| format!("The old secret logs in until {at}; its vendor tokens end then too."),
            );
            format!("{}\n{old}", shown_once(&answer, "Rotated"))
        }
        Action::Revoke(id) => {
            format!("Revoked {id}: its secret and its vendor tokens are refused from now on.")
        }
    })
}

const CREDENTIALS: &str = "/vendor/v1/credentials";

/// The service at `M2M_URL`, with a vendor token of the credential the environment names.
struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn login() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| format!("{name} is not set: the vendors commands act as a vendor credential (M2M_VENDOR_CLIENT_ID and M2M_VENDOR_SECRET)"))
        };
        let client_id = var("M2M_VENDOR_CLIENT_ID")?;
        let secret = match std::env::var_os("M2M_VENDOR_SECRET_FILE") {
            Some(path) if std::env::var_os("M2M_VENDOR_SECRET").is_none() => secret_from(&path)?,
            _ => var("M2M_VENDOR_SECRET")?,
        };
        let base = std::env::var("M2M_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
        let mut api = Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
            token: String::new(),
        };
        let body = json!({"clientId": client_id, "secret": secret});
        let login = api.call(reqwest::Method::POST, "/auth/vendor", Some(body));
        let answer = login.await.map_err(|e| match e.as_str() {
            REFUSED => format!(
                "{} refused M2M_VENDOR_CLIENT_ID and M2M_VENDOR_SECRET: check them (a revoked \
                 credential, or a secret rotated out, no longer logs in)",
                api.base
            ),
            _ => e,
        })?;
        api.token = answer["token"].as_str().unwrap_or_default().to_owned();
        Ok(api)
    }

    /// One request; the answer's JSON, or what went wrong in words.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !self.token.is_empty() {
            request = request.header("x-access-token", &self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "cannot reach {}: {}; is the server running (M2M_URL)?",
                self.base,
                root_cause(&e)
            )
        })?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(REFUSED.to_owned());
        }
        let errors = answer["errors"].as_array().into_iter().flatten();
        let message: Vec<&str> = errors.filter_map(Value::as_str).collect();
        Err(format!(
            "the server answered {status}: {}",
            message.join("; ")
        ))
    }
}

/// How [`Api::call`] reports a 401.
const REFUSED: &str = "the server refused the vendor credential (401)";

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The credentials as a table.
fn listing(all: &Value) -> String {
    let mut lines = vec![format!(
        "{:<36}  {:<24}  {:<24}  {}",
        "CLIENT ID", "CREATED", "LAST USED", "NAME"
    )];
    for credential in all.as_array().into_iter().flatten() {
        let field = |name: &str| credential[name].as_str().unwrap_or("-").to_owned();
        lines.push(format!(
            "{:<36}  {:<24}  {:<24}  {}",
            field("clientId"),
            field("createdAt"),
            field("lastUsedAt"),
            field("name")
        ));
    }
    lines.join("\n")
}

/// A credential with the secret its creation or rotation answered, shown only this once.
fn shown_once(credential: &Value, done: &str) -> String {
    let field = |name: &str| credential[name].as_str().unwrap_or_default();
    format!(
        "{done} {:?}. The secret is shown only this once:\n  M2M_VENDOR_CLIENT_ID={}\n  M2M_VENDOR_SECRET={}",
        field("name"),
        field("clientId"),
        field("secret")
    )
}

/// The most of a secret file read.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The first line of the file at `path` (`/dev/stdin` for a pipe), trimmed: a vendor secret kept
/// out of the environment and the command line.
fn secret_from(path: &std::ffi::OsStr) -> Result<String, String> {
    use std::io::{BufRead, Read};
    let shown = std::path::Path::new(path).display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| format!("M2M_VENDOR_SECRET_FILE {shown}: {e}"))?;
    let mut line = String::new();
    std::io::BufReader::new(file.take(MAX_SECRET_FILE_BYTES))
        .read_line(&mut line)
        .map_err(|e| format!("M2M_VENDOR_SECRET_FILE {shown}: {e}"))?;
    let secret = line.trim();
    if secret.is_empty() {
        return Err(format!(
            "M2M_VENDOR_SECRET_FILE {shown} holds no secret on its first line"
        ));
    }
    Ok(secret.to_owned())
}
