//! Pure rules: identifiers, secrets, token records, claims. No AWS and no HTTP types.

pub mod audit;
pub mod branding;
pub mod configuration;
pub mod directory;
pub mod document;
pub mod federation;
pub mod ids;
pub mod jwt;
pub mod lives;
pub mod network;
pub mod portal;
pub mod revocation;
pub mod rules;
pub mod secret;
pub mod time;
pub mod token;
pub mod usage;

pub use ids::{ClientId, GrantId, TenantId, UserId};
pub use jwt::{AccessClaims, PublicKey, TokenType, VendorClaims};
pub use secret::{Secret, SecretFormat, SecretHash, SecretKind};
pub use time::Timestamp;
pub use token::{
    ApiToken, LiveSecret, Metadata, PreviousSecret, RefreshKey, RefreshToken, SecretState,
    TokenOwner, VendorCredential,
};
