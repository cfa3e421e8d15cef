//! The portal in the vendor's brand: a display name, a logo, an accent colour and a colour
//! mode, set through the configuration API and applied by the portal as CSS custom properties.
//! Colours are held to WCAG AA: the accent is text (links) and a button's face on the page's
//! background, so it must contrast 4.5:1 with the background of every mode it is shown in.

use serde::{Deserialize, Serialize};

use super::rules::{Invalid, excerpt};

/// The page's backgrounds an accent must stand out on, in light and in dark mode: of the two
/// each mode paints (`portal.css`: `--wash` and `--paper`), the one closer to the accent.
pub const LIGHT_BACKGROUND: Color = Color([0xf6, 0xf8, 0xfa]);
pub const DARK_BACKGROUND: Color = Color([0x17, 0x19, 0x1e]);
/// WCAG 2.1 AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest logo: an https URL of this many characters, or a data URL of this many bytes.
pub const MAX_LOGO_URL_CHARS: usize = 2048;
pub const MAX_LOGO_DATA_BYTES: usize = 32 * 1024;

/// An sRGB colour, written `#rrggbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color([u8; 3]);

impl Color {
    /// `#rgb` or `#rrggbb`, in either case.
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let refused = || {
            Invalid(format!(
                "{field} must be a hex colour such as #1a73e8, not {:?}",
                excerpt(text)
            ))
        };
        let hex = text.strip_prefix('#').ok_or_else(refused)?;
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(refused)?;
        let channel = |high: u8, low: u8| high * 16 + low;
        match digits.as_slice() {
            [r, g, b] => Ok(Self([channel(*r, *r), channel(*g, *g), channel(*b, *b)])),
            [r1, r2, g1, g2, b1, b2] => Ok(Self([
                channel(*r1, *r2),
                channel(*g1, *g2),
                channel(*b1, *b2),
            ])),
            _ => Err(refused()),
        }
    }

    /// WCAG's relative luminance.
    fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let c = f64::from(channel) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    /// WCAG's contrast ratio, from 1 to 21.
    pub fn contrast(self, other: Self) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

impl Serialize for Color {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse("colour", &text).map_err(serde::de::Error::custom)
    }
}

/// Which colour mode the portal shows: the vendor's choice, or the user's system setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    Auto,
}

impl Theme {
    fn shows_light(self) -> bool {
        self != Self::Dark
    }

    fn shows_dark(self) -> bool {
        self != Self::Light
    }
}

/// The vendor's brand, as the portal applies it; every field optional (the portal's own look
/// where unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Branding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// An `https://` URL, or a `data:image/…;base64,` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<Color>,
    /// The accent in dark mode; the accent's own when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accent_color_dark: Option<Color>,
    pub theme: Theme,
}

impl Branding {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses what the portal could not show well: a display name beyond its length or with
    /// control characters, a logo that is not a small image, an accent that would not contrast
    /// 4.5:1 with the background of a mode the theme shows. Each refusal names its field.
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(name) = &self.display_name {
            let ok = !name.trim().is_empty()
                && name.chars().count() <= MAX_NAME_CHARS
                && !name.chars().any(char::is_control);
            if !ok {
                return Err(Invalid(format!(
                    "branding.displayName must be 1 to {MAX_NAME_CHARS} characters, none a \
                     control character"
                )));
            }
        }
        if let Some(logo) = &self.logo_url {
            logo_rules(logo)?;
        }
        let checks = [
            (
                "branding.accentColor",
                self.accent_color,
                self.theme.shows_light(),
                LIGHT_BACKGROUND,
                "light",
            ),
            (
                "branding.accentColorDark",
                self.accent_color_dark.or(self.accent_color),
                self.theme.shows_dark(),
                DARK_BACKGROUND,
                "dark",
            ),
        ];
        for (field, accent, shown, background, mode) in checks {
            let Some(accent) = accent.filter(|_| shown) else {
                continue;
            };
            let ratio = accent.contrast(background);
            if ratio < MIN_CONTRAST {
                let field = match (mode, self.accent_color_dark) {
                    ("dark", None) => "branding.accentColor",
                    _ => field,
                };
                return Err(Invalid(format!(
                    "{field}: {accent} contrasts {ratio:.2}:1 with the {mode} background \
                     {background}; WCAG AA needs {MIN_CONTRAST}:1{}",
                    if mode == "dark" && self.accent_color_dark.is_none() {
                        " (set accentColorDark for dark mode, or a theme of light)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(())
    }

    /// Branding from a vendor's JSON (`branding` in the configuration's `PATCH`): an object of
    /// `displayName`, `logoUrl`, `accentColor`, `accentColorDark` (strings) and `theme`
    /// (`light`, `dark` or `auto`), each optional; it replaces the branding as a whole.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, Invalid> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Sent {
            display_name: Option<String>,
            logo_url: Option<String>,
            accent_color: Option<String>,
            accent_color_dark: Option<String>,
            theme: Option<String>,
        }
        // As the body around it: a field is left out, not sent as null.
        let null = (value.as_object().into_iter().flatten()).find(|(_, v)| v.is_null());
        if let Some((name, _)) = null {
            return Err(Invalid(format!(
                "branding.{} must not be null (leave it out)",
                excerpt(name)
            )));
        }
        let sent: Sent = serde_json::from_value(value.clone()).map_err(|e| {
            Invalid(format!(
                "branding must be {{displayName?, logoUrl?, accentColor?, accentColorDark?, \
                 theme?}} with strings for values: {}",
                excerpt(&e.to_string())
            ))
        })?;
        let color = |field: &str, text: Option<String>| {
            text.map(|t| Color::parse(&format!("branding.{field}"), &t))
                .transpose()
        };
        let theme = match sent.theme.as_deref() {
            None | Some("auto") => Theme::Auto,
            Some("light") => Theme::Light,
            Some("dark") => Theme::Dark,
            Some(other) => {
                return Err(Invalid(format!(
                    "branding.theme must be light, dark or auto, not {:?}",
                    excerpt(other)
                )));
            }
        };
        let branding = Self {
            display_name: sent.display_name,
            logo_url: sent.logo_url,
            accent_color: color("accentColor", sent.accent_color)?,
            accent_color_dark: color("accentColorDark", sent.accent_color_dark)?,
            theme,
        };
        branding.check()?;
        Ok(branding)
    }

    /// The origin the logo is fetched from, for the page's `img-src`; none for a data URL.
    pub fn logo_origin(&self) -> Option<String> {
        let logo = self.logo_url.as_deref()?;
        logo_rules(logo).ok()?;
        let url = url::Url::parse(logo).ok()?;
        (url.scheme() == "https").then(|| url.origin().ascii_serialization())
    }
}

/// A logo is an `https://` URL of a host (no user name, at most 2,048 characters) or a base64
/// data URL of a PNG, JPEG, WebP, GIF or SVG image of at most 32 KiB.
fn logo_rules(logo: &str) -> Result<(), Invalid> {
    let refused = |why: &str| Invalid(format!("branding.logoUrl {why}"));
    if let Some(data) = logo.strip_prefix("data:") {
        if logo.len() > MAX_LOGO_DATA_BYTES {
            return Err(refused(&format!(
                "is larger than {} KiB: host it, and give its https:// URL",
                MAX_LOGO_DATA_BYTES / 1024
            )));
        }
        let kinds = [
            "image/png",
            "image/jpeg",
            "image/webp",
            "image/gif",
            "image/svg+xml",
        ];
        let (kind, payload) = data.split_once(";base64,").ok_or_else(|| {
            refused("must be a base64 data URL (data:image/png;base64,…) or an https:// URL")
        })?;
        if !kinds.contains(&kind) {
            return Err(refused("must be a PNG, JPEG, WebP, GIF or SVG image"));
        }
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map_err(|_| refused("holds data that is not base64"))?;
        return Ok(());
    }
    if logo.chars().count() > MAX_LOGO_URL_CHARS {
        return Err(refused(&format!(
            "is longer than {MAX_LOGO_URL_CHARS} characters"
        )));
    }
    let url = url::Url::parse(logo).map_err(|_| refused("is not a URL"))?;
    // Its origin goes into the page's CSP: a host name of letters, digits, - and . only (no
    // `*`, `;` or `,` that would widen or split the policy), or an IP address.
    let host_ok = match url.host() {
        Some(url::Host::Domain(name)) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        None => false,
    };
    let fine = logo.starts_with("https://")
        && url.scheme() == "https"
        && host_ok
        && url.username().is_empty()
        && url.password().is_none()
        && !logo.chars().any(|c| c.is_control() || c.is_whitespace());
    match fine {
        true => Ok(()),
        false => Err(refused("must be an https:// URL of a host, or a data URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn color(text: &str) -> Color {
        Color::parse("c", text).unwrap()
    }

    #[test]
    fn colours_read_and_contrast_as_wcag_says() {
        assert_eq!(color("#FFF").to_string(), "#ffffff");
        assert_eq!(color("#1A73e8").to_string(), "#1a73e8");
        for bad in ["1a73e8", "#1a73e", "#ggg", "#1a73e8ff", "red", "#"] {
            assert!(Color::parse("accentColor", bad).is_err(), "{bad}");
        }
        let ratio = color("#000000").contrast(color("#ffffff"));
        assert!((ratio - 21.0).abs() < 0.01);
        // WCAG's own example pair: #767676 on white is 4.54:1.
        let grey = color("#767676").contrast(color("#ffffff"));
        assert!((grey - 4.54).abs() < 0.01, "{grey}");
    }

    #[test]
    fn an_accent_must_contrast_in_every_mode_it_shows() {
        let branded = |accent: &str, dark: Option<&str>, theme: Theme| Branding {
            accent_color: Some(color(accent)),
            accent_color_dark: dark.map(color),
            theme,
            ..Branding::default()
        };
        assert!(branded("#1a56db", None, Theme::Light).check().is_ok());
        let pale = branded("#ffd400", None, Theme::Light).check().unwrap_err();
        assert!(pale.0.starts_with("branding.accentColor"), "{pale}");
        // Dark blue on white is fine, on the dark background it is not: auto needs a dark one.
        let auto = branded("#1a56db", None, Theme::Auto).check().unwrap_err();
        assert!(auto.0.contains("accentColorDark"), "{auto}");
        assert!(
            branded("#1a56db", Some("#8ab4f8"), Theme::Auto)
                .check()
                .is_ok()
        );
        assert!(branded("#8ab4f8", None, Theme::Dark).check().is_ok());
    }

    #[test]
    fn logos_are_small_images_or_https_urls() {
        let logo = |url: &str| Branding {
            logo_url: Some(url.to_owned()),
            ..Branding::default()
        };
        assert!(logo("https://cdn.example.com/logo.svg").check().is_ok());
        assert_eq!(
            logo("https://cdn.example.com/logo.svg")
                .logo_origin()
                .as_deref(),
            Some("https://cdn.example.com")
        );
        assert!(logo("data:image/png;base64,iVBORw0KGgo=").check().is_ok());
        assert_eq!(
            logo("data:image/png;base64,iVBORw0KGgo=").logo_origin(),
            None
        );
        let big = format!("data:image/png;base64,{}", "A".repeat(40_000));
        assert!(
            logo(&big)
                .check()
                .unwrap_err()
                .0
                .contains("larger than 32 KiB")
        );
        for bad in [
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:text/html;base64,PGI+",
            "data:image/png,rawbytes",
            "https://user:pw@cdn.example.com/logo.png",
            "https://*/a.svg",
            "https://*.example/a.svg",
            "https://a;sandbox/x.png",
            "https://a,sandbox/x.png",
        ] {
            assert!(logo(bad).check().is_err(), "{bad}");
        }
    }
}
