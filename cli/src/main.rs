//! `m2m`: the command-line client for customers' machines and CI jobs.
//!
//! `m2m login` exchanges a clientId and secret for a JWT and a refresh token and caches them in
//! a file only the user can read (never the secret); `m2m login --federated` exchanges instead
//! the OIDC token a workload's platform gives it (GitHub Actions, Kubernetes), under the API
//! token's trust policy, with no secret at all; `m2m token` prints a JWT for
//! `Authorization: Bearer $(m2m token)`, refreshing it shortly before it expires. With vendor
//! credentials, `m2m tokens create|list|rotate|delete` manages API tokens.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "m2m", version, about = "m2m-auth command-line client")]
struct Cli {
    /// The m2m-auth server.
    #[arg(
        long,
        env = "M2M_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// Send credentials over plain http to a host other than this machine (a warning is
    /// printed): without it, plain http is refused but for loopback addresses.
    #[arg(
        long,
        env = "M2M_ALLOW_INSECURE_HTTP",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_insecure_http: bool,
    /// Where the session is cached (default: $XDG_CONFIG_HOME/m2m/session.json).
    #[arg(long, env = "M2M_SESSION_FILE", global = true)]
    session_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Exchange an API token's clientId and secret for a JWT, and cache the session.
    Login {
        #[arg(long, env = "M2M_CLIENT_ID")]
        client_id: Option<String>,
        /// Prefer the environment, standard input or the prompt: flags show up in process
        /// listings.
        #[arg(
            long,
            env = "M2M_SECRET",
            hide_env_values = true,
            conflicts_with = "secret_stdin"
        )]
        secret: Option<String>,
        /// Read the secret from standard input (its first line), as from a secret manager:
        /// `vault read -field=secret ... | m2m login --secret-stdin`.
        #[arg(long)]
        secret_stdin: bool,
        /// No secret: exchange the workload's OIDC token, read from this environment variable
        /// (one a CI step filled) or, if none is set, this file (a Kubernetes projected
        /// service-account token), under one of the API token's trust policies.
        #[arg(long, value_name = "FILE_OR_ENV_VAR", conflicts_with_all = ["secret", "secret_stdin"])]
        federated: Option<String>,
    },
    /// Print a valid JWT, refreshing the cached one when it is about to expire.
    Token,
    /// Forget the cached session.
    Logout,
    /// Manage API tokens with vendor credentials (M2M_VENDOR_CLIENT_ID, M2M_VENDOR_SECRET).
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
        #[arg(long, env = "M2M_VENDOR_CLIENT_ID", global = true)]
        vendor_client_id: Option<String>,
        #[arg(
            long,
            env = "M2M_VENDOR_SECRET",
            hide_env_values = true,
            global = true,
            conflicts_with = "vendor_secret_stdin"
        )]
        vendor_secret: Option<String>,
        /// Read the vendor secret from standard input (its first line).
        #[arg(long, global = true)]
        vendor_secret_stdin: bool,
        /// The tenant whose tokens these are (required: every token belongs to one).
        #[arg(long, env = "M2M_TENANT", global = true)]
        tenant: Option<String>,
        /// For personal tokens: the user they belong to.
        #[arg(long, global = true)]
        user: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// Create a token; prints its clientId and secret (shown only this once).
    Create {
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        expires_in_minutes: Option<u32>,
        /// Tenant tokens only: role ids to grant.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Tenant tokens only: permission ids to grant.
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Delete one of the tenant's tokens (with --user, one of the user's) by its clientId.
    Delete { client_id: String },
    /// Give a token a new secret (printed only this once); the current one keeps working for
    /// the grace (default 60 minutes, at most 10080; 0 ends it now).
    Rotate {
        client_id: String,
        #[arg(long)]
        grace_minutes: Option<u32>,
    },
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("the server refused the credentials ({0}); check the clientId and secret")]
    Refused(String),
    #[error("{0}")]
    Server(String),
    #[error("{0}")]
    Usage(String),
    #[error("cannot use the session file {path}: {cause}")]
    Session { path: String, cause: String },
}

/// What `login` caches: never the secret, nor the workload's token.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    url: String,
    client_id: String,
    access_token: String,
    /// None after a federated login, which renews from its source instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Where a federated login read the workload's token (a file, or an environment variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    federated: Option<String>,
    /// Unix seconds.
    expires_at: i64,
}

/// Refresh when less than this many seconds remain.
const REFRESH_MARGIN_SECONDS: i64 = 60;
/// The longest `expiresIn` taken from the server (a year); more is an error, not a session
/// that never refreshes.
const MAX_EXPIRES_IN_SECONDS: i64 = 366 * 24 * 60 * 60;
/// The largest answer read from the server; its answers are a few KiB.
const MAX_BODY_BYTES: usize = 1 << 20;
/// The longest access or refresh token taken from the server.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The most characters of server text shown in a message.
const MAX_SHOWN_CHARS: usize = 300;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The m2m-auth server, checked before any secret goes to it: http or https, with nothing a
/// request would carry elsewhere (a user and password, a query, a fragment), and plain http
/// only to this machine unless the user allows it.
struct ServerUrl(reqwest::Url);

impl ServerUrl {
    fn parse(text: &str, allow_insecure_http: bool) -> Result<Self, Failure> {
        // The parse error never repeats the URL: it may hold a password.
        let url = reqwest::Url::parse(text.trim())
            .map_err(|e| Failure::Usage(format!("M2M_URL is not a URL ({e})")))?;
        let refuse = |why: &str| Err(Failure::Usage(format!("M2M_URL {why}")));
        if !url.username().is_empty() || url.password().is_some() {
            return refuse(
                "must not hold a user or password: credentials go in M2M_CLIENT_ID and M2M_SECRET",
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return refuse("must not have a query (?) or a fragment (#)");
        }
        let Some(host) = url.host_str().map(str::to_owned) else {
            return refuse("has no host");
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" if allow_insecure_http => {
                eprintln!("m2m: warning: secrets go to {host} over plain http, unencrypted");
            }
            "http" => {
                return refuse(&format!(
                    "is plain http to {host}: secrets would cross the network unencrypted; use \
                     https, or pass --allow-insecure-http (M2M_ALLOW_INSECURE_HTTP=1)"
                ));
            }
            _ => return refuse("must start with https:// (or http:// for this machine)"),
        }
        Ok(Self(url))
    }

    /// The server's address as it is shown and cached.
    fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// `path` under the server's address.
    fn endpoint(&self, path: &str) -> reqwest::Url {
        let mut url = self.0.clone();
        url.set_path(&format!("{}{path}", self.0.path().trim_end_matches('/')));
        url
    }
}

struct Api {
    server: ServerUrl,
    http: reqwest::Client,
}

impl Api {
    /// A client that follows no redirect: one would carry the secret, or `x-access-token`, to
    /// wherever the answer points.
    fn new(server: ServerUrl) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Usage(format!("cannot start an HTTP client: {e}")))?;
        Ok(Self { server, http })
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = request.send().await.map_err(|e| Failure::Unreachable {
            url: self.server.as_str().to_owned(),
            cause: root_cause(&e),
        })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Failure::Server(format!(
                "the server answered {status}, a redirect to {}: m2m follows none, so that \
                 credentials go only to M2M_URL; set M2M_URL to the server's own address",
                redirect_host(&response)
            )));
        }
        let body = self.bounded_body(response).await?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            // OAuth's errors (RFC 6749 section 5.2), from `/oauth/token`.
            .or_else(|| body["error_description"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if status.as_u16() == 401 {
            Err(Failure::Refused(format!("{status}")))
        } else {
            Err(Failure::Server(format!(
                "the server answered {status}: {}",
                printable(&message)
            )))
        }
    }

    /// The answer's body, read piece by piece and refused past `MAX_BODY_BYTES`: a server
    /// cannot make m2m hold more than that.
    async fn bounded_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let too_large = || {
            Failure::Server(format!(
                "the server's answer is larger than {} KiB; refused",
                MAX_BODY_BYTES / 1024
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(piece) = response.chunk().await.map_err(|e| Failure::Unreachable {
            url: self.server.as_str().to_owned(),
            cause: root_cause(&e),
        })? {
            if body.len() + piece.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&piece);
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call(self.http.post(self.server.endpoint(path)).json(body))
            .await
    }

    async fn issue(&self, path: &str, body: &Value, client_id: &str) -> Result<Session, Failure> {
        let issued = self.post(path, body).await?;
        Ok(Session {
            url: self.server.as_str().to_owned(),
            client_id: client_id.to_owned(),
            access_token: token_field(&issued, "accessToken")?,
            refresh_token: Some(token_field(&issued, "refreshToken")?),
            federated: None,
            expires_at: expires_at(&issued["expiresIn"])?,
        })
    }

    /// A session from the workload's token read from `source`, by RFC 8693's token exchange
    /// at `/oauth/token`.
    async fn federate(&self, client_id: &str, source: &str) -> Result<Session, Failure> {
        let workload = workload_token(source)?;
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("client_id", client_id),
            ("subject_token", workload.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ];
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(self.server.endpoint("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        let issued = self.call(request).await?;
        Ok(Session {
            url: self.server.as_str().to_owned(),
            client_id: client_id.to_owned(),
            access_token: token_field(&issued, "access_token")?,
            refresh_token: None,
            federated: Some(source.to_owned()),
            expires_at: expires_at(&issued["expires_in"])?,
        })
    }
}

/// When a session ends, from its answer's seconds.
fn expires_at(seconds: &Value) -> Result<i64, Failure> {
    seconds
        .as_i64()
        .filter(|seconds| (1..=MAX_EXPIRES_IN_SECONDS).contains(seconds))
        .and_then(|seconds| now().checked_add(seconds))
        .ok_or_else(|| {
            Failure::Server("the answer's expiresIn is not from 1 second to a year".into())
        })
}

/// The workload's OIDC token: the value of the environment variable `source` names, or else
/// the content of the regular file it names (a link to one is followed, as Kubernetes' projected
/// tokens are links), read up to [`MAX_TOKEN_BYTES`]. A variable wins, so that a file of its
/// name in a CI job's checkout cannot stand in for it.
fn workload_token(source: &str) -> Result<String, Failure> {
    let read = match std::env::var(source).ok().filter(|v| !v.trim().is_empty()) {
        Some(value) => Some(value),
        None => workload_file(source)?,
    };
    read.map(|text| text.trim().to_owned())
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_BYTES)
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no workload token in {source:?}: name a file holding it, or an environment \
                 variable set to it"
            ))
        })
}

/// The content of the regular file `path`, read up to one byte past [`MAX_TOKEN_BYTES`]; none
/// if there is no such file. A directory, device or FIFO is refused before it is opened.
fn workload_file(path: &str) -> Result<Option<String>, Failure> {
    use std::io::Read;
    let unreadable = |why: String| {
        Failure::Usage(format!(
            "cannot read the workload's token from {path}: {why}"
        ))
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(e.to_string())),
        Ok(meta) if !meta.is_file() => Err(unreadable("not a regular file".into())),
        Ok(_) => {
            let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
            let mut text = String::new();
            let limit = u64::try_from(MAX_TOKEN_BYTES).unwrap_or(u64::MAX) + 1;
            (file.take(limit).read_to_string(&mut text)).map_err(|e| unreadable(e.to_string()))?;
            Ok(Some(text))
        }
    }
}

/// A token in the server's answer: printed as it is and sent in headers, so only visible ASCII
/// (what JWTs and opaque tokens are made of), of a bounded length.
fn token_field(answer: &Value, name: &str) -> Result<String, Failure> {
    answer[name]
        .as_str()
        .filter(|token| {
            (1..=MAX_TOKEN_BYTES).contains(&token.len())
                && token.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .ok_or_else(|| Failure::Server(format!("the answer has no {name}, or not a token")))
}

/// Server text as it may be shown in a terminal: no control characters (an ANSI escape would
/// drive the terminal) nor bidirectional overrides (they reorder what is shown), and short.
fn printable(text: &str) -> String {
    let mut kept = text.chars().filter(|&c| !hidden(c));
    let mut shown: String = kept.by_ref().take(MAX_SHOWN_CHARS).collect();
    if kept.next().is_some() {
        shown.push('…');
    }
    shown
}

/// JSON as it may be shown in a terminal: the characters `printable` drops, which serde_json
/// leaves as they are past U+001F, escaped as `\uXXXX` (they can only be inside strings).
fn printable_json(json: &str) -> String {
    json.chars()
        .map(|c| {
            if hidden(c) && u32::from(c) > 0x1f {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character that changes what a terminal shows rather than showing itself.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Where a redirect points: its host alone, never a user or password it may carry.
fn redirect_host(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|location| location.to_str().ok())
        .and_then(|location| response.url().join(location).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "an unnamed place".into())
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    printable(&cause.to_string())
}

fn session_path(explicit: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| Failure::Usage("set HOME or M2M_SESSION_FILE".into()))?;
    Ok(base.join("m2m").join("session.json"))
}

/// A session file is a few hundred bytes; more is not one of ours.
const MAX_SESSION_BYTES: u64 = 64 * 1024;

/// Reads the session: a regular file (not a link: the session is only ever written in place
/// by [`save`]) of at most [`MAX_SESSION_BYTES`].
fn load(path: &Path) -> Result<Session, Failure> {
    use std::io::Read;
    let fail = |cause: String| Failure::Session {
        path: path.display().to_string(),
        cause,
    };
    let file = match open_regular(std::fs::OpenOptions::new().read(true), path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Usage(
                "not logged in: run `m2m login` first".into(),
            ));
        }
        opened => opened.map_err(|e| fail(e.to_string()))?,
    };
    let mut text = String::new();
    file.take(MAX_SESSION_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_SESSION_BYTES {
        return Err(fail(format!("larger than {MAX_SESSION_BYTES} bytes")));
    }
    serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
}

/// Opens `path` with `options` only if it is a regular file itself: a link is not followed
/// (`O_NOFOLLOW`), and a FIFO or device is not waited on (`O_NONBLOCK`) but refused.
fn open_regular(options: &mut std::fs::OpenOptions, path: &Path) -> std::io::Result<std::fs::File> {
    let refuse = || std::io::Error::other("not a regular file (a link?); remove it");
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = match options.open(path) {
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse()),
        opened => opened?,
    };
    if !file.metadata()?.file_type().is_file() {
        return Err(refuse());
    }
    Ok(file)
}

/// Writes the session readable by the user only, atomically, into a directory only the user
/// can enter: a new file (`create_new`: never an existing file, its mode, or what a link points
/// to) renamed over the old one.
fn save(path: &Path, session: &Session) -> Result<(), Failure> {
    let fail = |cause: String| Failure::Session {
        path: path.display().to_string(),
        cause,
    };
    if let Some(dir) = path.parent() {
        session_dir(dir).map_err(|e| fail(e.to_string()))?;
    }
    let text = serde_json::to_vec_pretty(session).map_err(|e| fail(e.to_string()))?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = path.with_extension(format!("{}-{nonce}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &text).and(file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| fail(e.to_string()))
}

/// Creates `dir` (and its parents) the user's alone (0700). A folder that exists keeps its
/// mode: it may be shared (`/tmp` is 1777), and the files m2m writes in it are private anyway.
fn session_dir(dir: &Path) -> std::io::Result<()> {
    let private = |recursive: bool| {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(recursive);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
    };
    match dir.parent() {
        None => return Ok(()),
        Some(parent) if !parent.as_os_str().is_empty() => private(true).create(parent)?,
        Some(_) => {}
    }
    match private(false).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
        // Exactly 0700 whatever the umask, on the folder m2m made.
        #[cfg(unix)]
        Ok(()) => {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        }
        #[cfg(not(unix))]
        Ok(()) => Ok(()),
    }
}

/// Holds the session's lock (`<session>.lock`) until dropped, so that of several `m2m token`
/// runs at once one refreshes and the others use what it saved.
fn lock_session(path: &Path) -> Result<std::fs::File, Failure> {
    let fail = |e: std::io::Error| Failure::Session {
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        session_dir(dir).map_err(fail)?;
    }
    let lock = open_lock(&path.with_extension("lock")).map_err(fail)?;
    lock.lock().map_err(fail)?;
    Ok(lock)
}

/// Opens the lock file without following a link or touching what one points to: a new one is
/// created (`create_new` never follows a link), an existing one is opened only if it is a
/// regular file itself ([`open_regular`]), and only to read.
fn open_lock(path: &Path) -> std::io::Result<std::fs::File> {
    let mut new = std::fs::OpenOptions::new();
    new.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut new, 0o600);
    match new.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        created => return created,
    }
    open_regular(std::fs::OpenOptions::new().read(true), path)
        .map_err(|e| std::io::Error::other(format!("the lock file: {e}")))
}

/// A clientId as the server gives them (a UUID, in any case, with or without hyphens), in its
/// canonical form; anything else is refused before it reaches a URL.
fn client_id(text: &str) -> Result<String, Failure> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let hyphens_fit = text.len() == 32
        || (text.len() == 36 && [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-'));
    if hex.len() != 32 || !hyphens_fit || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Failure::Usage(format!("{text:?} is not a clientId")));
    }
    let hex = hex.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn required(value: Option<String>, what: &str, flag: &str) -> Result<String, Failure> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Failure::Usage(format!("{what} is needed: pass {flag}")))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let path = session_path(cli.session_file)?;
    let insecure = cli.allow_insecure_http;
    let api = || Api::new(ServerUrl::parse(&cli.url, insecure)?);
    match cli.command {
        Command::Login {
            client_id,
            federated: Some(source),
            ..
        } => login_federated(&api()?, &path, client_id, &source).await,
        Command::Login {
            client_id,
            secret,
            secret_stdin,
            federated: None,
        } => {
            let secret = if secret_stdin {
                Some(from_stdin()?)
            } else {
                secret
            };
            login(&api()?, &path, client_id, secret).await
        }
        Command::Token => token(&path, insecure).await,
        Command::Logout => logout(&path),
        Command::Tokens {
            action,
            vendor_client_id,
            vendor_secret,
            vendor_secret_stdin,
            tenant,
            user,
        } => {
            let vendor_secret = match vendor_secret_stdin {
                true => Some(from_stdin()?),
                false => vendor_secret,
            };
            let vendor = Vendor {
                client_id: required(
                    vendor_client_id,
                    "a vendor clientId",
                    "--vendor-client-id or set M2M_VENDOR_CLIENT_ID",
                )?,
                secret: required(
                    vendor_secret,
                    "a vendor secret",
                    "--vendor-secret, --vendor-secret-stdin or M2M_VENDOR_SECRET",
                )?,
            };
            let tenant = required(tenant, "a tenant", "--tenant or set M2M_TENANT")?;
            tokens(&api()?, vendor, &tenant, user.as_deref(), action).await
        }
    }
}

/// `m2m login`: exchanges the token's credentials and caches the session.
async fn login(
    api: &Api,
    path: &Path,
    client_id: Option<String>,
    secret: Option<String>,
) -> Result<(), Failure> {
    let client_id = required(client_id, "a clientId", "--client-id or set M2M_CLIENT_ID")?;
    let secret = match secret {
        Some(secret) => secret,
        None => rpassword::prompt_password("secret: ").map_err(|e| {
            Failure::Usage(format!(
                "no secret given and none can be read from a terminal ({e}); set M2M_SECRET"
            ))
        })?,
    };
    let body = json!({"clientId": client_id, "secret": secret.trim()});
    let session = api
        .issue("/identity/resources/auth/v1/api-token", &body, &client_id)
        .await?;
    save(path, &session)?;
    eprintln!(
        "logged in as {client_id}; session cached in {}",
        path.display()
    );
    Ok(())
}

/// `m2m login --federated`: exchanges the workload's token and caches the session.
async fn login_federated(
    api: &Api,
    path: &Path,
    client_id: Option<String>,
    source: &str,
) -> Result<(), Failure> {
    let client_id = required(client_id, "a clientId", "--client-id or set M2M_CLIENT_ID")?;
    let session = api.federate(&client_id, source).await?;
    save(path, &session)?;
    eprintln!(
        "logged in as {client_id} with the workload's token; session cached in {}",
        path.display()
    );
    Ok(())
}

/// `m2m token`: prints the cached access token, refreshed first when it is about to expire.
/// Under the session's lock: a run that waited finds the session another one refreshed.
async fn token(path: &Path, allow_insecure_http: bool) -> Result<(), Failure> {
    let _lock = lock_session(path)?;
    let mut session = load(path)?;
    if session.expires_at.saturating_sub(now()) < REFRESH_MARGIN_SECONDS {
        let api = Api::new(ServerUrl::parse(&session.url, allow_insecure_http)?)?;
        let renewed = match (&session.refresh_token, &session.federated) {
            (Some(refresh_token), _) => {
                let body = json!({"refreshToken": refresh_token});
                let path = "/identity/resources/auth/v1/api-token/token/refresh";
                api.issue(path, &body, &session.client_id).await
            }
            // The platform renews the workload's token (the kubelet rewrites its file).
            (None, Some(source)) => api.federate(&session.client_id, source).await,
            (None, None) => Err(Failure::Refused("no refresh token".into())),
        };
        session = renewed.map_err(|e| match e {
            Failure::Refused(_) => Failure::Usage(
                "the session can no longer be refreshed: run `m2m login` again".into(),
            ),
            other => other,
        })?;
        save(path, &session)?;
    }
    println!("{}", session.access_token);
    Ok(())
}

/// `m2m logout`: forgets the cached session.
fn logout(path: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => eprintln!("logged out"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => eprintln!("not logged in"),
        Err(e) => {
            return Err(Failure::Session {
                path: path.display().to_string(),
                cause: e.to_string(),
            });
        }
    }
    Ok(())
}

/// The vendor credential `m2m tokens` manages tokens with.
struct Vendor {
    client_id: String,
    secret: String,
}

impl TokensAction {
    /// The create body; `None` for the actions that send none.
    fn body(&self) -> Option<serde_json::Value> {
        let TokensAction::Create {
            description,
            expires_in_minutes,
            roles,
            permissions,
        } = self
        else {
            return None;
        };
        let mut body = json!({"description": description});
        if let Some(minutes) = expires_in_minutes {
            body["expiresInMinutes"] = json!(minutes);
        }
        if !roles.is_empty() {
            body["roleIds"] = json!(roles);
        }
        if !permissions.is_empty() {
            body["permissionIds"] = json!(permissions);
        }
        Some(body)
    }
}

/// `m2m tokens create|list|rotate|delete`: a tenant's tokens, or a user's with `--user`.
async fn tokens(
    api: &Api,
    vendor: Vendor,
    tenant: &str,
    user: Option<&str>,
    action: TokensAction,
) -> Result<(), Failure> {
    let body = json!({"clientId": vendor.client_id, "secret": vendor.secret});
    let vendor = token_field(&api.post("/auth/vendor", &body).await?, "token")?;
    let base = api.server.endpoint(match user {
        Some(_) => "/identity/resources/users/api-tokens/v1",
        None => "/identity/resources/tenants/api-tokens/v1",
    });
    // `base/<clientId>[/rotate]`, the clientId checked and escaped as one segment.
    let token_url = |id: &str, rotate: bool| -> Result<reqwest::Url, Failure> {
        let mut url = base.clone();
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| Failure::Usage("M2M_URL cannot take a path".into()))?;
        segments.push(&client_id(id)?);
        if rotate {
            segments.push("rotate");
        }
        drop(segments);
        Ok(url)
    };
    let request = match (&action, action.body()) {
        (TokensAction::Create { .. }, Some(body)) => api.http.post(base.clone()).json(&body),
        (TokensAction::Delete { client_id: id }, _) => api.http.delete(token_url(id, false)?),
        (
            TokensAction::Rotate {
                client_id: id,
                grace_minutes,
            },
            _,
        ) => {
            let body = grace_minutes.map_or_else(|| json!({}), |m| json!({"graceMinutes": m}));
            api.http.post(token_url(id, true)?).json(&body)
        }
        _ => api.http.get(base.clone()),
    };
    let request = request
        .header("x-access-token", &vendor)
        .header("frontegg-tenant-id", tenant);
    let request = match user {
        Some(user) => request.header("frontegg-user-id", user),
        None => request,
    };
    let answer = api.call(request).await?;
    if let TokensAction::Delete { client_id: id } = &action {
        println!("deleted {}", client_id(id)?);
        return Ok(());
    }
    let answer = serde_json::to_string_pretty(&answer).unwrap_or_default();
    println!("{}", printable_json(&answer));
    Ok(())
}

/// The most of standard input read for a secret.
const MAX_STDIN_SECRET_BYTES: u64 = 4096;

/// A secret piped on standard input: its first line, trimmed; refused when empty.
fn from_stdin() -> Result<String, Failure> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_SECRET_BYTES)
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("cannot read the secret from standard input: {e}")))?;
    let secret = line.trim();
    if secret.is_empty() {
        return Err(Failure::Usage(
            "standard input holds no secret (its first line is empty)".into(),
        ));
    }
    Ok(secret.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("m2m: {failure}");
            ExitCode::FAILURE
        }
    }
}
