//! The vendor's switches for API tokens, as Frontegg's self-service settings: whether tokens
//! work at all, of each kind, and the longest expiry a new one may have.

use serde::{Deserialize, Serialize};

use super::branding::Branding;
use super::portal::TokenKind;
use super::time::Timestamp;

/// The directory record that holds them.
pub const TOKEN_SETTINGS_ID: &str = "apiTokens";

/// What Frontegg's SDKs recognise when API tokens are switched off.
pub const DISABLED: &str = "Api tokens are disabled";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenSettings {
    pub api_tokens_enabled: bool,
    pub personal_tokens_enabled: bool,
    pub tenant_tokens_enabled: bool,
    /// The longest `expiresInMinutes` a new token may have; with one, every token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_expires_in_minutes: Option<u32>,
    /// The portal in the vendor's brand.
    #[serde(skip_serializing_if = "Branding::is_default")]
    pub branding: Branding,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            api_tokens_enabled: true,
            personal_tokens_enabled: true,
            tenant_tokens_enabled: true,
            max_expires_in_minutes: None,
            branding: Branding::default(),
        }
    }
}

impl TokenSettings {
    /// Whether tokens of `kind` may be created and exchanged; why not otherwise.
    pub fn allows(&self, kind: TokenKind) -> Result<(), &'static str> {
        match kind {
            _ if !self.api_tokens_enabled => Err(DISABLED),
            TokenKind::Personal if !self.personal_tokens_enabled => {
                Err("Personal api tokens are disabled")
            }
            TokenKind::Tenant if !self.tenant_tokens_enabled => {
                Err("Tenant api tokens are disabled")
            }
            _ => Ok(()),
        }
    }

    /// Whether a new token's expiry keeps within the maximum; why not otherwise.
    pub fn check_expiry(&self, expires_in_minutes: Option<u32>) -> Result<(), String> {
        match (self.max_expires_in_minutes, expires_in_minutes) {
            (Some(max), None) => Err(format!(
                "expiresInMinutes is required: tokens expire within {max} minutes here"
            )),
            (Some(max), Some(minutes)) if minutes > max => Err(format!(
                "expiresInMinutes must be at most {max}, the longest expiry allowed here"
            )),
            _ => Ok(()),
        }
    }

    /// Whether a token ending at `expires_at` may get a new secret at `now`: with a maximum,
    /// only if it expires within it from now, so that no secret lives longer than a new token's
    /// could; why not otherwise.
    pub fn check_renewal(
        &self,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), String> {
        let Some(max) = self.max_expires_in_minutes else {
            return Ok(());
        };
        let latest = now.plus_seconds(i64::from(max) * 60);
        match expires_at {
            Some(end) if end <= latest => Ok(()),
            _ => Err(format!(
                "This token lives beyond maxExpiresInMinutes ({max}), the longest expiry \
                 allowed here: delete it and create a new one instead"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_switch_wins_and_each_kind_has_its_own() {
        let on = TokenSettings::default();
        assert_eq!(on.allows(TokenKind::Personal), Ok(()));
        let off = TokenSettings {
            api_tokens_enabled: false,
            ..on.clone()
        };
        assert_eq!(off.allows(TokenKind::Tenant), Err(DISABLED));
        let no_personal = TokenSettings {
            personal_tokens_enabled: false,
            ..on
        };
        assert!(no_personal.allows(TokenKind::Personal).is_err());
        assert_eq!(no_personal.allows(TokenKind::Tenant), Ok(()));
    }

    #[test]
    fn with_a_maximum_every_token_expires_within_it() {
        let capped = TokenSettings {
            max_expires_in_minutes: Some(60),
            ..TokenSettings::default()
        };
        assert!(capped.check_expiry(Some(60)).is_ok());
        assert!(capped.check_expiry(Some(61)).is_err());
        assert!(capped.check_expiry(None).is_err());
        assert!(TokenSettings::default().check_expiry(None).is_ok());
    }

    #[test]
    fn with_a_maximum_only_tokens_ending_within_it_get_a_new_secret() {
        let capped = TokenSettings {
            max_expires_in_minutes: Some(60),
            ..TokenSettings::default()
        };
        let now = Timestamp::from_millis(1_800_000_000_000);
        assert!(
            capped
                .check_renewal(Some(now.plus_seconds(3600)), now)
                .is_ok()
        );
        let beyond = capped.check_renewal(Some(now.plus_seconds(3601)), now);
        assert!(beyond.unwrap_err().contains("maxExpiresInMinutes"));
        assert!(
            capped.check_renewal(None, now).is_err(),
            "a token that never ends"
        );
        assert!(TokenSettings::default().check_renewal(None, now).is_ok());
    }
}
