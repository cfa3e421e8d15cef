//! Typed settings, read once from the environment. A missing or malformed value stops start-up
//! with a message that names the variable.

use crate::domain::federation::LocalIssuers;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::domain::{ClientId, Secret, SecretFormat, SecretKind};

/// Where tokens live and who signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The local default: an embedded database and a key file in this folder; with
    /// `audit_stream` (`M2M_AUDIT_STREAM_FILE`), every audit event is also appended to that
    /// JSON-lines file, for a SIEM to read.
    Embedded {
        data_dir: PathBuf,
        audit_stream: Option<PathBuf>,
    },
    /// DynamoDB and KMS, through the usual AWS environment (`AWS_ENDPOINT_URL` included).
    /// With `wrapping_key_id` (`M2M_WRAPPING_KEY_ID`), JWTs are signed in memory by a key
    /// stored wrapped under that symmetric KMS key, and the KMS key's JWTs still verify.
    /// With `previous_kms_key_id` (`M2M_PREVIOUS_KMS_KEY_ID`), a rotation is under way: that
    /// key signs nothing new, and its JWTs still verify.
    Aws {
        table: String,
        kms_key_id: String,
        wrapping_key_id: Option<String>,
        previous_kms_key_id: Option<String>,
    },
}

/// What every function and the local server need.
/// Beyond one AWS call's budget ([`crate::adapters::aws::OPERATION_TIMEOUT`]) and within the
/// template's function timeout (10 s).
pub const DEFAULT_REQUEST_BUDGET_SECONDS: u64 = 8;

#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: Backend,
    pub bcrypt_cost: u32,
    /// How new API-token secrets look (`M2M_SECRET_FORMAT`: `scannable` or `uuid`).
    pub secret_format: SecretFormat,
    /// The JWTs' `iss` (`M2M_ISSUER`); else the public base URL, as OpenID discovery requires.
    pub issuer: Option<String>,
    pub audience: String,
    pub application_id: String,
    pub access_token_ttl_seconds: i64,
    pub vendor_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    /// The longest a request may take before it is answered 503 (`M2M_REQUEST_BUDGET_SECONDS`,
    /// default [`DEFAULT_REQUEST_BUDGET_SECONDS`]); below the function timeout on Lambda.
    pub request_budget_seconds: u64,
    /// JWTs (exchanges and refreshes) one API token may be issued per minute
    /// (`M2M_TOKEN_RATE_LIMIT_PER_MINUTE`, default 600).
    pub token_rate_limit_per_minute: u32,
    /// How many days audit events are kept (`M2M_AUDIT_RETENTION_DAYS`, default 365).
    pub audit_retention_days: u32,
    /// Whether the client's address is the last `X-Forwarded-For` entry instead of the peer's
    /// (`M2M_TRUST_X_FORWARDED_FOR`, default false): only for a local server that only one
    /// proxy reaches. On Lambda, API Gateway's `sourceIp` is used whatever this says.
    pub trust_forwarded_for: bool,
    /// The service's public base URL (`M2M_PUBLIC_URL`); else, on Lambda, the API's default endpoint.
    pub public_url: Option<String>,
    /// Who may show the portal in a frame: CSP `frame-ancestors` sources
    /// (`M2M_PORTAL_FRAME_ANCESTORS`, default `'none'`).
    pub portal_frame_ancestors: String,
    /// Issuers a trust policy may name over plain http (`M2M_FEDERATION_LOCAL_ISSUERS`, URLs
    /// on 127.0.0.1 or [::1] separated by commas): for tests and development only.
    pub local_issuers: LocalIssuers,
}

/// What only the local server needs.
#[derive(Debug)]
pub struct LocalSettings {
    pub listen: SocketAddr,
    /// Where `/metrics` is served in Prometheus' text format (`M2M_METRICS_LISTEN`); unset, no
    /// metrics are kept.
    pub metrics_listen: Option<SocketAddr>,
    /// A vendor credential to ensure at start-up, from `M2M_VENDOR_CLIENT_ID`/`M2M_VENDOR_SECRET`.
    pub vendor: Option<(ClientId, Secret)>,
}

/// The CloudWatch namespace of the functions' metrics when none is set.
pub const DEFAULT_METRICS_NAMESPACE: &str = "m2m-auth";

#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

/// Reads variables through `lookup`, so tests need not touch the process environment.
pub struct Env<F>(pub F);

pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
        ok: impl Fn(&T) -> bool,
    ) -> Result<T, ConfigError> {
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        text.trim()
            .parse()
            .ok()
            .filter(|v| ok(v))
            .ok_or_else(|| ConfigError {
                name,
                problem: format!("expected {expected}, got {text:?}"),
            })
    }

    fn seconds(&self, name: &'static str, default: i64) -> Result<i64, ConfigError> {
        self.parse(
            name,
            default,
            "a number of seconds from 1 to 31536000",
            |s| (1..=31_536_000).contains(s),
        )
    }

    /// Where tokens are kept and who signs: DynamoDB and KMS when both are named, else the
    /// embedded store.
    fn backend(&self) -> Result<Backend, ConfigError> {
        Ok(match (self.get("M2M_TABLE"), self.get("M2M_KMS_KEY_ID")) {
            (Some(_), Some(_)) if self.get("M2M_AUDIT_STREAM_FILE").is_some() => {
                return Err(ConfigError {
                    name: "M2M_AUDIT_STREAM_FILE",
                    problem: "is for the local server; on AWS, audit events reach the \
                              template's AuditBus"
                        .into(),
                });
            }
            (Some(table), Some(kms_key_id)) => Backend::Aws {
                table,
                kms_key_id,
                wrapping_key_id: self.get("M2M_WRAPPING_KEY_ID"),
                previous_kms_key_id: self.get("M2M_PREVIOUS_KMS_KEY_ID"),
            },
            (None, None) => Backend::Embedded {
                data_dir: self
                    .get("M2M_DATA_DIR")
                    .map_or_else(|| PathBuf::from(".m2m"), PathBuf::from),
                audit_stream: self.get("M2M_AUDIT_STREAM_FILE").map(PathBuf::from),
            },
            (Some(_), None) => return Err(missing("M2M_KMS_KEY_ID", "M2M_TABLE is set")),
            (None, Some(_)) => return Err(missing("M2M_TABLE", "M2M_KMS_KEY_ID is set")),
        })
    }

    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let backend = self.backend()?;
        Ok(Settings {
            backend,
            bcrypt_cost: self.parse("M2M_BCRYPT_COST", 10, "a whole number from 4 to 31", |c| {
                (4..=31).contains(c)
            })?,
            secret_format: self.parse(
                "M2M_SECRET_FORMAT",
                SecretFormat::Scannable,
                "scannable or uuid",
                |_| true,
            )?,
            issuer: self.get("M2M_ISSUER"),
            audience: self.get("M2M_AUDIENCE").unwrap_or_else(|| "m2m-api".into()),
            application_id: self
                .get("M2M_APPLICATION_ID")
                .unwrap_or_else(|| "m2m-default-app".into()),
            access_token_ttl_seconds: self.seconds("M2M_ACCESS_TOKEN_TTL_SECONDS", 3600)?,
            vendor_token_ttl_seconds: self.seconds("M2M_VENDOR_TOKEN_TTL_SECONDS", 3600)?,
            refresh_token_ttl_seconds: self
                .seconds("M2M_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            request_budget_seconds: self.parse(
                "M2M_REQUEST_BUDGET_SECONDS",
                DEFAULT_REQUEST_BUDGET_SECONDS,
                "a number of seconds from 1 to 900",
                |s| (1..=900).contains(s),
            )?,
            trust_forwarded_for: self.parse(
                "M2M_TRUST_X_FORWARDED_FOR",
                false,
                "true or false",
                |_| true,
            )?,
            token_rate_limit_per_minute: self.parse(
                "M2M_TOKEN_RATE_LIMIT_PER_MINUTE",
                600,
                "a whole number from 1 to 1000000",
                |n| (1..=1_000_000).contains(n),
            )?,
            audit_retention_days: self.parse(
                "M2M_AUDIT_RETENTION_DAYS",
                365,
                "a whole number of days from 1 to 3650",
                |n| (1..=3650).contains(n),
            )?,
            portal_frame_ancestors: self.frame_ancestors()?,
            local_issuers: self.local_issuers()?,
            public_url: match self.get("M2M_PUBLIC_URL") {
                None => None,
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    Some(url.trim_end_matches('/').to_owned())
                }
                Some(url) => {
                    return Err(ConfigError {
                        name: "M2M_PUBLIC_URL",
                        problem: format!("expected an http(s):// URL, got {url:?}"),
                    });
                }
            },
        })
    }

    /// Issuers on this machine that trust policies may name over http.
    fn local_issuers(&self) -> Result<LocalIssuers, ConfigError> {
        let name = "M2M_FEDERATION_LOCAL_ISSUERS";
        let Some(text) = self.get(name) else {
            return Ok(LocalIssuers::default());
        };
        let issuers: Vec<String> = text.split(',').map(|i| i.trim().to_owned()).collect();
        let local = |issuer: &String| {
            url::Url::parse(issuer).is_ok_and(|url| {
                url.scheme() == "http"
                    && matches!(url.host_str(), Some("127.0.0.1" | "[::1]"))
                    && url.query().is_none()
            })
        };
        match issuers.iter().find(|i| !local(i)) {
            Some(bad) => Err(ConfigError {
                name,
                problem: format!("expected http:// URLs on 127.0.0.1 or [::1], got {bad:?}"),
            }),
            None => Ok(LocalIssuers(issuers)),
        }
    }

    /// CSP sources separated by spaces: `'none'`, `'self'`, or `https://` origins (with an
    /// optional `*.` for subdomains).
    fn frame_ancestors(&self) -> Result<String, ConfigError> {
        let Some(text) = self.get("M2M_PORTAL_FRAME_ANCESTORS") else {
            return Ok("'none'".into());
        };
        let source_ok = |source: &str| {
            matches!(source, "'none'" | "'self'")
                || ((source.starts_with("https://") || source.starts_with("http://"))
                    && source
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:/*_".contains(&b)))
        };
        let sources: Vec<&str> = text.split_whitespace().collect();
        if sources.iter().all(|s| source_ok(s)) {
            Ok(sources.join(" "))
        } else {
            Err(ConfigError {
                name: "M2M_PORTAL_FRAME_ANCESTORS",
                problem: format!(
                    "expected 'none', 'self' or https:// origins separated by spaces, got {text:?}"
                ),
            })
        }
    }

    /// The EventBridge bus the `audit-stream` function puts the trail on (`M2M_AUDIT_BUS`).
    pub fn audit_bus(&self) -> Result<String, ConfigError> {
        self.get("M2M_AUDIT_BUS")
            .ok_or_else(|| missing("M2M_AUDIT_BUS", "the audit stream puts events on it"))
    }

    /// The CloudWatch namespace of a Lambda function's metrics (`M2M_METRICS_NAMESPACE`, by
    /// default `m2m-auth`).
    pub fn metrics_namespace(&self) -> String {
        self.get("M2M_METRICS_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned())
    }

    /// Settings for a Lambda function: DynamoDB and KMS are required.
    pub fn aws_settings(&self) -> Result<Settings, ConfigError> {
        let settings = self.settings()?;
        if matches!(settings.backend, Backend::Embedded { .. }) {
            return Err(missing(
                "M2M_TABLE",
                "a Lambda function needs DynamoDB and KMS",
            ));
        }
        Ok(settings)
    }

    pub fn local_settings(&self) -> Result<LocalSettings, ConfigError> {
        let listen = self.parse(
            "M2M_LISTEN",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "host:port, such as 127.0.0.1:8080",
            |_| true,
        )?;
        let vendor = match (self.get("M2M_VENDOR_CLIENT_ID"), self.get("M2M_VENDOR_SECRET")) {
            (None, None) => None,
            (Some(id), Some(secret)) => Some((
                ClientId::parse(id.trim()).map_err(|_| ConfigError {
                    name: "M2M_VENDOR_CLIENT_ID",
                    problem: "expected a UUID".into(),
                })?,
                Secret::parse(secret.trim())
                    .ok()
                    .filter(|s| s.may_be(SecretKind::Vendor))
                    .ok_or_else(|| ConfigError {
                        name: "M2M_VENDOR_SECRET",
                        problem: "expected a vendor secret (m2mv_ followed by 49 letters and digits, as `m2m-admin create-vendor` prints); unset both M2M_VENDOR_* variables to have one generated".into(),
                    })?,
            )),
            (Some(_), None) => return Err(missing("M2M_VENDOR_SECRET", "M2M_VENDOR_CLIENT_ID is set")),
            (None, Some(_)) => return Err(missing("M2M_VENDOR_CLIENT_ID", "M2M_VENDOR_SECRET is set")),
        };
        let metrics_listen = match self.get("M2M_METRICS_LISTEN") {
            None => None,
            Some(text) => Some(text.trim().parse().map_err(|_| ConfigError {
                name: "M2M_METRICS_LISTEN",
                problem: format!("expected host:port, such as 127.0.0.1:9464, got {text:?}"),
            })?),
        };
        Ok(LocalSettings {
            listen,
            metrics_listen,
            vendor,
        })
    }
}

fn missing(name: &'static str, why: &str) -> ConfigError {
    ConfigError {
        name,
        problem: format!("not set ({why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_to_the_embedded_store_in_dot_m2m() {
        let settings = env(&[]).settings().unwrap();
        assert_eq!(
            settings.backend,
            Backend::Embedded {
                data_dir: ".m2m".into(),
                audit_stream: None,
            }
        );
        assert_eq!(settings.bcrypt_cost, 10);
        assert_eq!(settings.secret_format, SecretFormat::Scannable);
        assert_eq!(env(&[]).local_settings().unwrap().listen.port(), 8080);
    }

    #[test]
    fn table_and_key_select_aws() {
        let settings = env(&[("M2M_TABLE", "t"), ("M2M_KMS_KEY_ID", "alias/k")])
            .aws_settings()
            .unwrap();
        assert!(matches!(settings.backend, Backend::Aws { .. }));
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: [(&'static [(&'static str, &'static str)], &str); 9] = [
            (&[("M2M_SECRET_FORMAT", "base64")], "M2M_SECRET_FORMAT"),
            (
                &[(
                    "M2M_PORTAL_FRAME_ANCESTORS",
                    "https://app.example; script-src *",
                )],
                "M2M_PORTAL_FRAME_ANCESTORS",
            ),
            (&[("M2M_BCRYPT_COST", "three")], "M2M_BCRYPT_COST"),
            (&[("M2M_BCRYPT_COST", "40")], "M2M_BCRYPT_COST"),
            (
                &[("M2M_REQUEST_BUDGET_SECONDS", "0")],
                "M2M_REQUEST_BUDGET_SECONDS",
            ),
            (
                &[("M2M_TOKEN_RATE_LIMIT_PER_MINUTE", "0")],
                "M2M_TOKEN_RATE_LIMIT_PER_MINUTE",
            ),
            (&[("M2M_TABLE", "t")], "M2M_KMS_KEY_ID"),
            (
                &[("M2M_ACCESS_TOKEN_TTL_SECONDS", "-1")],
                "M2M_ACCESS_TOKEN_TTL_SECONDS",
            ),
            (&[], "M2M_TABLE"),
        ];
        for (vars, name) in cases {
            let err = env(vars).aws_settings().unwrap_err();
            assert_eq!(err.name, name, "{err}");
        }
        let err = env(&[("M2M_LISTEN", "nowhere")])
            .local_settings()
            .unwrap_err();
        assert!(err.to_string().starts_with("M2M_LISTEN:"));
        let err = env(&[
            (
                "M2M_VENDOR_CLIENT_ID",
                "0b7e5c8e-8d47-4a59-9a34-4b1b0c1f7d11",
            ),
            ("M2M_VENDOR_SECRET", "changeme"),
        ])
        .local_settings()
        .unwrap_err();
        assert_eq!(err.name, "M2M_VENDOR_SECRET");
    }
}
