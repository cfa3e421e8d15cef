//! Workload identity federation: the trust policies under which a workload exchanges the OIDC
//! token its platform already gives it (GitHub Actions, Kubernetes, GitLab CI, any OpenID
//! issuer) for an API token's JWT, with no secret; and how a workload token whose signature
//! was verified is held to them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rules::{Invalid, excerpt};

/// The most trust policies one API token carries.
pub const MAX_TRUST_POLICIES: usize = 5;
/// The most conditions (the subject's and the named claims') one policy sets.
pub const MAX_CONDITIONS: usize = 8;
/// The longest issuer URL, audience and pattern, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// The longest claim name (a path such as `kubernetes.io/serviceaccount/name`).
pub const MAX_CLAIM_CHARS: usize = 128;
/// How far `exp`, `nbf` and `iat` may be off the service's clock.
pub const LEEWAY_SECONDS: i64 = 60;
/// The longest a workload token may still be valid when presented: one valid for longer (a
/// legacy Kubernetes service-account token never expires) is refused.
pub const MAX_REMAINING_SECONDS: i64 = 24 * 3600;

/// Claims a condition may not name: the issuer, audience and times are checked by every
/// exchange, the subject by [`TrustPolicy::subject`].
const RESERVED_CLAIMS: [&str; 7] = ["iss", "aud", "exp", "nbf", "iat", "jti", "sub"];

/// A value a claim must have: exact, or with `*` (any run of characters, none included) and `?`
/// (any one character), as AWS IAM's `StringLike`. It holds at least one other character.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        if text.chars().count() > MAX_VALUE_CHARS || text.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "{field} must be at most {MAX_VALUE_CHARS} characters, none a control character"
            )));
        }
        if text.chars().all(|c| matches!(c, '*' | '?')) {
            return Err(Invalid(format!(
                "{field} must name something: {:?} matches any value",
                excerpt(text)
            )));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches: the classic glob walk, backing up to the last `*` on a mismatch.
    pub fn matches(&self, text: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

/// Which workloads may exchange their platform's token for the JWT of the API token that
/// carries this policy: tokens of `issuer`, for `audience`, whose `sub` and named claims match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicy {
    /// Derived from the rest (see [`TrustPolicy::new`]): the same policy keeps its id when a
    /// list is written again, and a changed one gets another.
    pub id: String,
    pub issuer: String,
    pub audience: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Pattern>,
    /// Claim paths (`/` between the names of nested objects' members) and the values they
    /// must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, Pattern>,
}

/// Issuers trusted over plain http (`M2M_FEDERATION_LOCAL_ISSUERS`): only for tests and
/// development, on this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalIssuers(pub Vec<String>);

impl LocalIssuers {
    pub fn allows(&self, issuer: &str) -> bool {
        self.0.iter().any(|local| local == issuer)
    }
}

impl TrustPolicy {
    /// A policy from what a manager sent, held to every rule: an `https://` issuer (or one of
    /// `local`) that names no address inside a private network, an audience, and at least one
    /// condition that names something.
    pub fn new(
        issuer: &str,
        audience: &str,
        subject: Option<&str>,
        claims: &BTreeMap<String, String>,
        local: &LocalIssuers,
    ) -> Result<Self, Invalid> {
        issuer_rules(issuer, local)?;
        let plain = |field: &str, text: &str| {
            let ok = !text.trim().is_empty()
                && text.chars().count() <= MAX_VALUE_CHARS
                && !text.chars().any(char::is_control);
            ok.then(|| text.to_owned()).ok_or_else(|| {
                Invalid(format!(
                    "{field} must be 1 to {MAX_VALUE_CHARS} characters, none a control character"
                ))
            })
        };
        let audience = plain("trustPolicies: audience", audience)?;
        let subject = subject
            .map(|s| Pattern::parse("trustPolicies: subject", s))
            .transpose()?;
        if claims.len() + usize::from(subject.is_some()) > MAX_CONDITIONS {
            return Err(Invalid(format!(
                "trustPolicies: a policy sets at most {MAX_CONDITIONS} conditions"
            )));
        }
        if subject.is_none() && claims.is_empty() {
            return Err(Invalid(
                "trustPolicies: a policy needs a subject or a claim to match: issuer and \
                 audience alone would admit every workload of the issuer"
                    .into(),
            ));
        }
        let mut patterns = BTreeMap::new();
        for (name, value) in claims {
            claim_name_rules(name)?;
            let field = format!("trustPolicies: claims/{}", excerpt(name));
            patterns.insert(name.clone(), Pattern::parse(&field, value)?);
        }
        let mut policy = Self {
            id: String::new(),
            issuer: issuer.to_owned(),
            audience,
            subject,
            claims: patterns,
        };
        policy.id = policy.derived_id();
        Ok(policy)
    }

    /// The first 16 hex digits of the SHA-256 of the policy's JSON without its id.
    fn derived_id(&self) -> String {
        let unnamed = Self {
            id: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_vec(&unnamed).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this policy, read back from a store, is one [`TrustPolicy::new`] makes: an
    /// import carries only those in.
    pub fn check(&self, local: &LocalIssuers) -> Result<(), Invalid> {
        let claims = self
            .claims
            .iter()
            .map(|(name, value)| (name.clone(), value.0.clone()))
            .collect();
        let subject = self.subject.as_ref().map(Pattern::as_str);
        let remade = Self::new(&self.issuer, &self.audience, subject, &claims, local)?;
        match remade == *self {
            true => Ok(()),
            false => Err(Invalid(format!(
                "trust policy {} is not as written",
                self.id
            ))),
        }
    }

    /// Why the verified claims of a token from this policy's issuer do not meet it (the first
    /// condition that failed, naming the claim, never its value); `None` when they do.
    pub fn mismatch(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        let audience_ok = match claims.get("aud") {
            Some(serde_json::Value::String(aud)) => *aud == self.audience,
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| *a == *self.audience),
            _ => false,
        };
        if !audience_ok {
            return Some("aud does not match".into());
        }
        if let Some(subject) = &self.subject {
            let sub = claims.get("sub").and_then(claim_text);
            if !sub.is_some_and(|s| subject.matches(&s)) {
                return Some("sub does not match".into());
            }
        }
        for (name, pattern) in &self.claims {
            let value = claim_at(claims, name).and_then(claim_text);
            if !value.is_some_and(|v| pattern.matches(&v)) {
                return Some(format!("claim {name} does not match"));
            }
        }
        None
    }
}

/// The value at a claim path: `/` separates the names of nested objects' members
/// (`kubernetes.io/serviceaccount/name`).
fn claim_at<'c>(
    claims: &'c serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'c serde_json::Value> {
    let mut names = path.split('/');
    let first = claims.get(names.next()?)?;
    names.try_fold(first, |value, name| value.as_object()?.get(name))
}

/// A claim's value as a condition compares it: a string as it is, a number or boolean as JSON
/// writes it; nothing for an array, an object or null.
fn claim_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn claim_name_rules(name: &str) -> Result<(), Invalid> {
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    };
    let named = excerpt(name);
    if name.len() > MAX_CLAIM_CHARS || !name.split('/').all(segment_ok) {
        return Err(Invalid(format!(
            "trustPolicies: claims: {named:?} is no claim name (letters, digits, _ - . : in \
             names of at most {MAX_CLAIM_CHARS} characters, / between nested ones)"
        )));
    }
    if RESERVED_CLAIMS.contains(&name) {
        return Err(Invalid(format!(
            "trustPolicies: claims: {named} is checked by every exchange{}",
            if name == "sub" { "; set subject" } else { "" }
        )));
    }
    Ok(())
}

/// An issuer is an `https://` URL with a host and nothing after its path, as OpenID Connect
/// Discovery requires; its host is a name or a public address (a private, loopback or
/// link-local one would let a policy make the service fetch from inside its own network), unless
/// `local` names it.
fn issuer_rules(issuer: &str, local: &LocalIssuers) -> Result<(), Invalid> {
    let refused = |why: &str| Invalid(format!("trustPolicies: issuer {why}"));
    if issuer.chars().count() > MAX_VALUE_CHARS {
        return Err(refused(&format!(
            "is longer than {MAX_VALUE_CHARS} characters"
        )));
    }
    if issuer.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refused("must not hold a space or a control character"));
    }
    if local.allows(issuer) {
        return Ok(());
    }
    let url = url::Url::parse(issuer)
        .map_err(|_| refused(&format!("{:?} is not a URL", excerpt(issuer))))?;
    if url.scheme() != "https" {
        return Err(refused("must be an https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("must not hold a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refused("must not have a query or a fragment"));
    }
    let private = match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
        }
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        None => true,
    };
    if private {
        return Err(refused(
            "must be reachable on the internet: a private, loopback or single-label host is refused",
        ));
    }
    Ok(())
}

/// Whether `ip` is an address of the public internet: not private, loopback, link-local
/// (cloud metadata services live there), shared, documentation, unspecified or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            // IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) is judged as that IPv4.
            let s = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                std::net::Ipv4Addr::new(a, b, c, d)
            };
            let inner = match s {
                [0x0064, 0xff9b, 0, 0, 0, 0, high, low] => Some(embedded(high, low)),
                [0x2002, high, low, ..] => Some(embedded(high, low)),
                _ => v6.to_ipv4(),
            };
            if let Some(v4) = inner {
                return is_public(IpAddr::V4(v4));
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x0064 && s[1] == 0xff9b)
                || (first == 0x0100 && s[1..4] == [0, 0, 0])
                || (first == 0x2001 && (s[1] == 0x0db8 || s[1] == 0)))
        }
    }
}

/// A token's trust policies from a manager's JSON (`trustPolicies`): an array of at most
/// [`MAX_TRUST_POLICIES`] objects `{issuer, audience, subject?, claims?}` (an `id`, as
/// listings show it, is ignored: it follows from the rest); `[]` removes them all. A policy
/// given twice is refused.
pub fn trust_policies(
    field: &serde_json::Value,
    local: &LocalIssuers,
) -> Result<Vec<TrustPolicy>, Invalid> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sent {
        issuer: String,
        audience: String,
        subject: Option<String>,
        #[serde(default)]
        claims: BTreeMap<String, String>,
        #[allow(dead_code)]
        id: Option<String>,
    }
    let Some(entries) = field.as_array() else {
        return Err(Invalid("trustPolicies must be an array of policies".into()));
    };
    if entries.len() > MAX_TRUST_POLICIES {
        return Err(Invalid(format!(
            "trustPolicies may hold at most {MAX_TRUST_POLICIES} policies"
        )));
    }
    let mut policies: Vec<TrustPolicy> = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let sent: Sent = serde_json::from_value(entry.clone()).map_err(|e| {
            Invalid(format!(
                "trustPolicies[{n}] must be {{issuer, audience, subject?, claims?}} with \
                 strings for values: {}",
                excerpt(&e.to_string())
            ))
        })?;
        let subject = sent.subject.as_deref();
        let policy = TrustPolicy::new(&sent.issuer, &sent.audience, subject, &sent.claims, local)
            .map_err(|e| {
            Invalid(e.0.replacen("trustPolicies", &format!("trustPolicies[{n}]"), 1))
        })?;
        if policies.iter().any(|p| p.id == policy.id) {
            return Err(Invalid(format!("trustPolicies[{n}] repeats a policy")));
        }
        policies.push(policy);
    }
    Ok(policies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse("p", text).unwrap()
    }

    #[test]
    fn patterns_match_as_globs() {
        let sub = pattern("repo:octo-org/*:ref:refs/heads/main");
        assert!(sub.matches("repo:octo-org/app:ref:refs/heads/main"));
        assert!(!sub.matches("repo:octo-org/app:ref:refs/heads/feature"));
        assert!(!sub.matches("repo:octo-org-evil/app:ref:refs/heads/main"));
        assert!(pattern("a?c").matches("abc") && !pattern("a?c").matches("ac"));
        assert!(pattern("exact").matches("exact") && !pattern("exact").matches("exact2"));
        assert!(pattern("*x*").matches("x") && pattern("*x*").matches("axb"));
        assert!(!pattern("a*b*c").matches("acb"));
        for only_wild in ["*", "**", "?*", "?"] {
            assert!(Pattern::parse("subject", only_wild).is_err(), "{only_wild}");
        }
    }

    fn github_policy(claims: &[(&str, &str)]) -> Result<TrustPolicy, Invalid> {
        let claims = claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TrustPolicy::new(
            "https://token.actions.githubusercontent.com",
            "https://auth.example.com",
            None,
            &claims,
            &LocalIssuers::default(),
        )
    }

    #[test]
    fn policies_name_a_public_https_issuer_and_a_condition() {
        let local = LocalIssuers(vec!["http://127.0.0.1:8080".into()]);
        let claims = BTreeMap::from([("repository".to_owned(), "o/r".to_owned())]);
        let new = |issuer: &str| TrustPolicy::new(issuer, "aud", None, &claims, &local);
        assert!(new("https://token.actions.githubusercontent.com").is_ok());
        assert!(new("http://127.0.0.1:8080").is_ok());
        for refused in [
            "http://token.actions.githubusercontent.com",
            "https://169.254.169.254/latest",
            "https://10.0.0.1",
            "https://[::1]",
            "https://[::127.0.0.1]",
            "https://[64:ff9b::7f00:1]",
            "https://[2002:7f00:1::]",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
            "https://localhost:8443",
            "https://metadata",
            "https://u:p@example.com",
            "https://example.com/?q=1",
            "http://127.0.0.1:9090",
            "not a url",
        ] {
            assert!(new(refused).is_err(), "{refused}");
        }
        let bare = TrustPolicy::new("https://i.example", "aud", None, &BTreeMap::new(), &local);
        assert!(bare.unwrap_err().0.contains("needs a subject or a claim"));
        assert!(github_policy(&[("aud", "x")]).is_err());
        assert!(github_policy(&[("bad name", "x")]).is_err());
        let nine: Vec<(String, String)> =
            (0..9).map(|n| (format!("c{n}"), "v".to_owned())).collect();
        let nine: Vec<(&str, &str)> = nine.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(github_policy(&nine).is_err());
    }

    #[test]
    fn ids_follow_the_policy() {
        let a = github_policy(&[("repository", "o/r")]).unwrap();
        let again = github_policy(&[("repository", "o/r")]).unwrap();
        let other = github_policy(&[("repository", "o/s")]).unwrap();
        assert_eq!(a.id, again.id);
        assert_ne!(a.id, other.id);
        assert_eq!(a.id.len(), 16);
        a.check(&LocalIssuers::default()).unwrap();
        let tampered = TrustPolicy {
            id: other.id.clone(),
            ..a
        };
        assert!(tampered.check(&LocalIssuers::default()).is_err());
    }

    #[test]
    fn claims_are_matched_by_path_and_text() {
        let policy = TrustPolicy::new(
            "https://kubernetes.default.svc.cluster.local",
            "m2m",
            Some("system:serviceaccount:ci:*"),
            &BTreeMap::from([
                ("kubernetes.io/namespace".to_owned(), "ci".to_owned()),
                (
                    "kubernetes.io/serviceaccount/name".to_owned(),
                    "deploy*".to_owned(),
                ),
            ]),
            &LocalIssuers::default(),
        )
        .unwrap();
        let claims = |sub: &str, ns: &str, aud: serde_json::Value| {
            let value = serde_json::json!({
                "aud": aud, "sub": sub,
                "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "deployer"}}
            });
            value.as_object().unwrap().clone()
        };
        let good = claims("system:serviceaccount:ci:deployer", "ci", "m2m".into());
        assert_eq!(policy.mismatch(&good), None);
        let aud_list = claims(
            "system:serviceaccount:ci:x",
            "ci",
            serde_json::json!(["a", "m2m"]),
        );
        assert_eq!(policy.mismatch(&aud_list), None);
        let wrong_aud = claims("system:serviceaccount:ci:x", "ci", "m2m-other".into());
        assert!(policy.mismatch(&wrong_aud).unwrap().starts_with("aud"));
        let wrong_sub = claims("system:serviceaccount:prod:x", "ci", "m2m".into());
        assert_eq!(policy.mismatch(&wrong_sub).unwrap(), "sub does not match");
        let wrong_ns = claims("system:serviceaccount:ci:x", "prod", "m2m".into());
        assert_eq!(
            policy.mismatch(&wrong_ns).unwrap(),
            "claim kubernetes.io/namespace does not match"
        );
        let numeric = github_policy(&[("repository_owner_id", "42")]).unwrap();
        let mut owner = serde_json::Map::new();
        owner.insert("aud".into(), "https://auth.example.com".into());
        owner.insert("repository_owner_id".into(), 42.into());
        assert_eq!(numeric.mismatch(&owner), None);
    }

    #[test]
    fn lists_are_bounded_and_named() {
        let local = LocalIssuers::default();
        let one = serde_json::json!({
            "issuer": "https://token.actions.githubusercontent.com",
            "audience": "https://auth.example.com",
            "subject": "repo:o/r:ref:refs/heads/main"
        });
        assert_eq!(
            trust_policies(&serde_json::json!([one]), &local)
                .unwrap()
                .len(),
            1
        );
        let twice = serde_json::json!([one, one]);
        assert!(
            trust_policies(&twice, &local)
                .unwrap_err()
                .0
                .contains("repeats")
        );
        let six: Vec<serde_json::Value> = (0..6)
            .map(|n| {
                let mut p = one.clone();
                p["subject"] = format!("repo:o/r{n}:*").into();
                p
            })
            .collect();
        assert!(trust_policies(&six.into(), &local).is_err());
        let unknown = serde_json::json!([{"issuer": "https://i.example", "audience": "a",
            "subject": "s", "extra": 1}]);
        assert!(
            trust_policies(&unknown, &local)
                .unwrap_err()
                .0
                .starts_with("trustPolicies[0]")
        );
        let insecure = serde_json::json!([{"issuer": "http://i.example", "audience": "a",
            "subject": "s"}]);
        let refused = trust_policies(&insecure, &local).unwrap_err().0;
        assert!(refused.starts_with("trustPolicies[0]: issuer"), "{refused}");
    }
}
