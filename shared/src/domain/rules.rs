//! The limits every write obeys, whether it comes from the API or from a provisioning event.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::ids::{GrantId, InvalidId};
use super::network::{AllowedIps, IpRange, MAX_ALLOWED_IPS};
use super::token::{MAX_GRACE_MINUTES, Metadata};

/// Why a value was refused; the message names the field.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The most of a caller's input an error message repeats.
pub const MAX_ECHOED_CHARS: usize = 64;

/// `text` as an error message may repeat it: its first [`MAX_ECHOED_CHARS`] characters, and
/// `…` when there were more (a refused value can be as long as the body), with every control
/// or invisible character written as its escape (`\u{1b}`), so that no message moves a
/// terminal's cursor or hides what it quotes.
pub fn excerpt(text: &str) -> Cow<'_, str> {
    let (cut, more) = match text.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((end, _)) => (&text[..end], true),
        None => (text, false),
    };
    let shown =
        |c: char| !(c.is_control() || is_invisible(c) || matches!(c, '\u{FE00}'..='\u{FE0F}'));
    if !more && cut.chars().all(shown) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(cut.len() + 3);
    for c in cut.chars() {
        if shown(c) {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    if more {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Characters that show nothing or change how the text around them is shown: zero-width
/// spaces and joiners, bidirectional marks, embeddings, overrides and isolates, invisible
/// operators, the byte-order mark, interlinear annotation, specials, tag characters and the
/// supplementary variation selectors, the combining grapheme joiner, the Hangul fillers, the
/// blank braille pattern and the musical null notehead. Two keys or names must never look
/// alike and differ.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D159}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// How a text is read: keys and addresses take no variation selector at all; prose (names,
/// descriptions) may ask for an emoji's text or emoji presentation (U+FE0E, U+FE0F) right after
/// a character outside ASCII, and may hold line feeds and tabs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Key,
    Prose,
}

/// Whether `c`, after `previous`, shows nothing or controls the terminal or the text around it.
fn hides(c: char, previous: Option<char>, reading: Reading) -> bool {
    let prose = reading == Reading::Prose;
    let presentation =
        matches!(c, '\u{FE0E}' | '\u{FE0F}') && prose && previous.is_some_and(|p| !p.is_ascii());
    let selector = matches!(c, '\u{FE00}'..='\u{FE0F}') && !presentation;
    let control = c.is_control() && !(prose && matches!(c, '\n' | '\t'));
    // Line and paragraph separators end a line for some readers of JSON lines, not for others.
    let separator = matches!(c, '\u{2028}' | '\u{2029}');
    is_invisible(c) || selector || control || separator
}

/// `text` in Unicode's composed form (NFC), so that what looks the same is stored the same;
/// refused, naming `field`, when it holds a character that [`hides`].
pub fn visible(field: &str, text: String, reading: Reading) -> Result<String, Invalid> {
    use unicode_normalization::UnicodeNormalization;
    let mut previous = None;
    for c in text.chars() {
        if hides(c, previous, reading) {
            return Err(Invalid(format!(
                "{field} must not hold invisible, control or bidirectional control characters"
            )));
        }
        previous = Some(c);
    }
    Ok(if unicode_normalization::is_nfc(&text) {
        text
    } else {
        text.nfc().collect()
    })
}

pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_METADATA_BYTES: usize = 2048;
/// Objects and arrays nested in metadata, the outermost object counting as the first.
pub const MAX_METADATA_DEPTH: usize = 5;
pub const MAX_GRANTS: usize = 100;
pub const MAX_KEY_CHARS: usize = 256;
/// Ten years of 365 days, as Frontegg's limit.
pub const MAX_EXPIRES_IN_MINUTES: u32 = 10 * 365 * 24 * 60;
/// A user's memberships, and the role ids in all of them: a user is one record (one DynamoDB
/// item of at most 400 KB), read in one batch with up to 100 tenants.
pub const MAX_TENANTS_PER_USER: usize = 100;
pub const MAX_ROLE_IDS_PER_USER: usize = 1000;

pub fn description(description: String) -> Result<String, Invalid> {
    let description = visible("description", description, Reading::Prose)?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(description)
}

pub fn metadata(metadata: Metadata) -> Result<Metadata, Invalid> {
    // A map serialises exactly as the JSON object it is.
    let bytes = serde_json::to_vec(&metadata).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_METADATA_BYTES {
        return Err(Invalid(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes of JSON"
        )));
    }
    let deepest = metadata.values().map(depth).max().unwrap_or(0) + 1;
    if deepest > MAX_METADATA_DEPTH {
        return Err(Invalid(format!(
            "metadata may nest objects and arrays at most {MAX_METADATA_DEPTH} deep"
        )));
    }
    Ok(metadata)
}

/// How deep objects and arrays nest in `value` (a scalar: 0).
fn depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A token's lifetime in minutes: any JSON number that is a whole number (JavaScript and Python
/// send `1440.0`) from 1 to [`MAX_EXPIRES_IN_MINUTES`].
pub fn expires_in_minutes(minutes: Option<&serde_json::Number>) -> Result<Option<u32>, Invalid> {
    whole_minutes("expiresInMinutes", minutes, 1..=MAX_EXPIRES_IN_MINUTES)
}

/// The vendor's `maxExpiresInMinutes`: the same range as a token's lifetime, named as itself.
pub fn max_expires_in_minutes(
    minutes: Option<&serde_json::Number>,
) -> Result<Option<u32>, Invalid> {
    whole_minutes("maxExpiresInMinutes", minutes, 1..=MAX_EXPIRES_IN_MINUTES)
}

/// A rotation's `graceMinutes`: how long the replaced secret keeps working, 0 to
/// [`MAX_GRACE_MINUTES`].
pub fn grace_minutes(minutes: Option<&serde_json::Value>) -> Result<Option<u32>, Invalid> {
    let range = 0..=MAX_GRACE_MINUTES;
    match minutes {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => whole_minutes("graceMinutes", Some(n), range),
        Some(_) => Err(Invalid(format!(
            "graceMinutes must be a whole number from 0 to {MAX_GRACE_MINUTES}"
        ))),
    }
}

/// A whole number of minutes within `range` (`5.0` is 5), if one was given.
fn whole_minutes(
    field: &str,
    minutes: Option<&serde_json::Number>,
    range: std::ops::RangeInclusive<u32>,
) -> Result<Option<u32>, Invalid> {
    let Some(number) = minutes else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64)
    });
    whole
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| range.contains(m))
        .map(Some)
        .ok_or_else(|| {
            Invalid(format!(
                "{field} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

/// Role or permission ids as granted: at most [`MAX_GRANTS`], each well-formed, each once (the
/// first occurrence keeps its place).
pub fn grant_ids<S: AsRef<str>>(field: &str, ids: &[S]) -> Result<Vec<GrantId>, Invalid> {
    if ids.len() > MAX_GRANTS {
        return Err(Invalid(format!(
            "{field} may hold at most {MAX_GRANTS} ids"
        )));
    }
    let mut parsed: Vec<GrantId> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.as_ref();
        let grant =
            GrantId::parse(id).map_err(|e| Invalid(format!("{field}: {:?} {e}", excerpt(id))))?;
        if !parsed.contains(&grant) {
            parsed.push(grant);
        }
    }
    Ok(parsed)
}

/// The largest role `level` either way: 2^53 - 1, the largest integer every JSON parser (and
/// JavaScript) reads exactly.
pub const MAX_LEVEL: i64 = (1 << 53) - 1;

/// A role's `level`: a whole number (`54.0` too, as JavaScript may send it) within
/// ±[`MAX_LEVEL`]; 0 when absent.
pub fn level(level: Option<&serde_json::Number>) -> Result<i64, Invalid> {
    let Some(number) = level else {
        return Ok(0);
    };
    // Within ±2^53 every f64 with no fraction converts exactly.
    #[allow(clippy::cast_possible_truncation)]
    let whole = number.as_i64().or_else(|| {
        let f = number.as_f64()?;
        (f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0).then_some(f as i64)
    });
    whole
        .filter(|n| (-MAX_LEVEL..=MAX_LEVEL).contains(n))
        .ok_or_else(|| {
            Invalid(format!(
                "level must be a whole number from -{MAX_LEVEL} to {MAX_LEVEL}"
            ))
        })
}

pub const MAX_NAME_CHARS: usize = 256;
/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_CHARS: usize = 254;

/// A role or permission key as it appears in JWTs: 1 to 256 characters, no spaces or control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantKey(String);

impl GrantKey {
    pub fn parse(key: String) -> Result<Self, Invalid> {
        let key = visible("key", key, Reading::Key)?;
        let valid = !key.is_empty()
            && key.chars().count() <= MAX_KEY_CHARS
            && !key.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(key))
        } else {
            Err(Invalid(format!(
                "key must be 1 to {MAX_KEY_CHARS} characters without spaces"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GrantKey {
    type Error = Invalid;
    fn try_from(key: String) -> Result<Self, Invalid> {
        Self::parse(key)
    }
}

impl From<GrantKey> for String {
    fn from(key: GrantKey) -> String {
        key.0
    }
}

impl std::fmt::Display for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the field an id was refused in.
pub fn field<T>(name: &str, parsed: Result<T, InvalidId>) -> Result<T, Invalid> {
    parsed.map_err(|e| Invalid(format!("{name} {e}")))
}

/// A display name: at most 256 characters, no control characters.
pub fn name(name: String) -> Result<String, Invalid> {
    let name = visible("name", name, Reading::Prose)?;
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "name must be at most {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(name)
}

pub const MAX_CREDENTIAL_NAME_CHARS: usize = 100;

/// A vendor credential's `name`, required: 1 to 100 characters, not only spaces, no control
/// characters. Any other JSON (a number, `null`) is refused naming the field.
pub fn credential_name(name: Option<&serde_json::Value>) -> Result<String, Invalid> {
    let text = name.and_then(serde_json::Value::as_str).unwrap_or_default();
    let text = visible("name", text.to_owned(), Reading::Prose)?;
    let chars = text.chars().count();
    if text.trim().is_empty()
        || chars > MAX_CREDENTIAL_NAME_CHARS
        || text.chars().any(char::is_control)
    {
        return Err(Invalid(format!(
            "name must be a text of 1 to {MAX_CREDENTIAL_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(text)
}

/// An email address as the directory keeps it: at most 254 characters, with an `@`.
pub fn email(email: String) -> Result<String, Invalid> {
    let email = visible("email", email, Reading::Key)?;
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && email.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(Invalid(format!(
            "email must be an address of at most {MAX_EMAIL_CHARS} characters"
        )))
    }
}

/// `allowedIps`: an array of at most [`MAX_ALLOWED_IPS`] IPv4 or IPv6 addresses or CIDR ranges;
/// `[]` lets the token be used from anywhere. A bad entry is named.
pub fn allowed_ips(field: &serde_json::Value) -> Result<AllowedIps, Invalid> {
    let Some(entries) = field.as_array() else {
        return Err(Invalid(
            "allowedIps must be an array of IP addresses or CIDR ranges".into(),
        ));
    };
    if entries.len() > MAX_ALLOWED_IPS {
        return Err(Invalid(format!(
            "allowedIps may hold at most {MAX_ALLOWED_IPS} entries"
        )));
    }
    let ranges = entries
        .iter()
        .map(|entry| {
            entry.as_str().and_then(IpRange::parse).ok_or_else(|| {
                Invalid(format!(
                    "allowedIps: {} is not an IPv4 or IPv6 address or CIDR range",
                    excerpt(&entry.to_string())
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AllowedIps::new(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_name_is_required_short_and_printable() {
        let name = |v: serde_json::Value| credential_name(Some(&v));
        assert_eq!(name("ci deploys".into()).unwrap(), "ci deploys");
        assert_eq!(name("x".repeat(100).into()).unwrap().len(), 100);
        for bad in [
            serde_json::json!(""),
            serde_json::json!("   "),
            serde_json::json!("x".repeat(101)),
            serde_json::json!("a\nb"),
            serde_json::json!(5),
            serde_json::Value::Null,
        ] {
            assert!(
                name(bad.clone()).unwrap_err().0.starts_with("name "),
                "{bad}"
            );
        }
        assert!(credential_name(None).is_err(), "required");
    }

    #[test]
    fn grant_ids_keep_the_first_of_each_id_in_order() {
        let ids = grant_ids("roleIds", &["b", "a", "b", "c", "a"]).unwrap();
        let ids: Vec<&str> = ids.iter().map(GrantId::as_str).collect();
        assert_eq!(ids, ["b", "a", "c"]);
    }

    #[test]
    fn limits_name_their_field() {
        let many: Vec<String> = (0..=MAX_GRANTS).map(|i| format!("r{i}")).collect();
        assert!(
            grant_ids("roleIds", &many)
                .unwrap_err()
                .0
                .contains("roleIds")
        );
        assert!(GrantKey::parse("has space".into()).is_err());
        assert!(description("x".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
        assert_eq!(expires_in_minutes(None), Ok(None));
        let minutes = |text: &str| -> Result<Option<u32>, Invalid> {
            expires_in_minutes(Some(&serde_json::from_str(text).unwrap()))
        };
        assert_eq!(minutes("1440"), Ok(Some(1440)));
        assert_eq!(
            minutes("1440.0"),
            Ok(Some(1440)),
            "JavaScript's and Python's whole floats"
        );
        assert_eq!(
            minutes("5256000"),
            Ok(Some(5_256_000)),
            "Frontegg's maximum"
        );
        for refused in ["0", "-5", "1.5", "5256001", "1e300"] {
            assert!(minutes(refused).is_err(), "{refused}");
        }
        let max = max_expires_in_minutes(Some(&serde_json::from_str("0").unwrap()));
        assert!(max.unwrap_err().0.starts_with("maxExpiresInMinutes "));
    }

    #[test]
    fn keys_and_names_are_composed_and_never_hold_what_does_not_show() {
        let composed = GrantKey::parse("caf\u{e9}.read".into()).unwrap();
        let decomposed = GrantKey::parse("cafe\u{301}.read".into()).unwrap();
        assert_eq!(composed, decomposed, "one spelling of what looks the same");
        for hidden in [
            '\u{200B}',
            '\u{200D}',
            '\u{202E}',
            '\u{2066}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            let key = format!("reports.read{hidden}");
            let refused = GrantKey::parse(key.clone()).unwrap_err();
            assert!(refused.0.contains("invisible"), "{refused}");
            assert!(name(key.clone()).is_err() && description(key.clone()).is_err());
            assert!(email(format!("a{hidden}@b.test")).is_err());
        }
        assert_eq!(name("Zoë 🚀".into()).unwrap(), "Zoë 🚀");
        assert!(
            name("I \u{2764}\u{FE0F} ops".into()).is_ok(),
            "an emoji's presentation"
        );
        assert!(
            GrantKey::parse("\u{2764}\u{FE0F}".into()).is_err(),
            "not in a key"
        );
        assert!(description("line one\nline two\tend".into()).is_ok());
    }

    #[test]
    fn an_error_repeats_at_most_an_excerpt_of_the_input() {
        assert_eq!(excerpt("10.0.0.0/33"), "10.0.0.0/33");
        let long = "é".repeat(MAX_ECHOED_CHARS + 1);
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(MAX_ECHOED_CHARS)));
        assert_eq!(
            excerpt("a\u{1b}[2J\u{202e}b"),
            "a\\u{1b}[2J\\u{202e}b",
            "escaped, not sent"
        );
        let ids = vec!["x".repeat(5000)];
        let refused = grant_ids("roleIds", &ids).unwrap_err().0;
        assert!(refused.len() < 300, "{refused}");
        let entries = serde_json::json!(["y".repeat(5000)]);
        let refused = allowed_ips(&entries).unwrap_err().0;
        assert!(refused.len() < 300, "{refused}");
    }
}
