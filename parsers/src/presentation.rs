//! What an event shows its crowd (issue 19, API.md): the operator's live message and the
//! event's presentation (display name, accent colour, logo). Every rule for them is here; the
//! admin routes read the fields through [`read`], and the waiting page renders them as text
//! (`textContent`), never as HTML.

use serde_json::Value;

use crate::form::Fields;

/// The longest live message, in Unicode scalar values.
pub const MESSAGE_MAX: usize = 280;
/// The longest display name.
pub const DISPLAY_NAME_MAX: usize = 80;
/// The longest logo address.
pub const LOGO_URL_MAX: usize = 500;
/// The least contrast between the accent and the dark text the pages put on it (buttons) and
/// the dark page it is drawn on (links, the progress bar): WCAG's AA for normal text.
pub const MIN_CONTRAST: f64 = 4.5;
/// The pages' dark ink on accent buttons (`marquee.css`: `button { color: #111 }`).
const INK_ON_ACCENT: [u8; 3] = [0x11, 0x11, 0x11];

/// A change to one of these fields: absent (leave it), `null` (clear it), or a new value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Change {
    #[default]
    Keep,
    Clear,
    Set(String),
}

impl Change {
    /// Whether the column is written, and with what.
    pub fn write(&self) -> (bool, Option<&str>) {
        match self {
            Self::Keep => (false, None),
            Self::Clear => (true, None),
            Self::Set(v) => (true, Some(v)),
        }
    }
}

/// The four fields of a create or change request, each checked.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    pub message: Change,
    pub display_name: Change,
    pub accent_color: Change,
    pub logo_url: Change,
}

/// The request's four fields; any problem is added to `f`'s check, naming the field.
pub fn read(f: &mut Fields<'_>) -> Presentation {
    Presentation {
        message: field(f, "message", |s| plain_text(s, MESSAGE_MAX)),
        display_name: field(f, "display_name", |s| plain_text(s, DISPLAY_NAME_MAX)),
        accent_color: field(f, "accent_color", accent_problem),
        logo_url: field(f, "logo_url", logo_problem),
    }
}

/// The field names [`read`] takes, for a route's list of known fields.
pub const FIELDS: [&str; 4] = ["message", "display_name", "accent_color", "logo_url"];

fn field(f: &mut Fields<'_>, name: &str, problem: impl Fn(&str) -> Option<String>) -> Change {
    match f.map.get(name) {
        None => Change::Keep,
        Some(Value::Null) => Change::Clear,
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Change::Clear;
            }
            match problem(s) {
                None => Change::Set(normalise(name, s)),
                Some(why) => {
                    f.check.require(false, name, &why);
                    Change::Keep
                }
            }
        }
        Some(_) => {
            f.check.require(false, name, "must be a string or null");
            Change::Keep
        }
    }
}

/// Colours are stored lower-case, so the column's check and the pages see one spelling.
fn normalise(name: &str, s: &str) -> String {
    if name == "accent_color" {
        s.to_ascii_lowercase()
    } else {
        s.to_owned()
    }
}

/// Plain text: at most `max` scalar values, no control characters (line breaks included: a
/// message is one line) and none of the bidirectional overrides or isolates that can make
/// text read differently from what it holds.
pub fn plain_text(s: &str, max: usize) -> Option<String> {
    if s.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    if s.chars().any(char::is_control) {
        return Some("must be one line of text without control characters".into());
    }
    if s.chars().any(is_bidi_control) {
        return Some("must not hold bidirectional override or isolate characters".into());
    }
    None
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// `#rrggbb`, with enough contrast against the pages' dark text and background.
pub fn accent_problem(s: &str) -> Option<String> {
    let Some(rgb) = parse_hex(s) else {
        return Some("must be a colour as #rrggbb".into());
    };
    let ratio = contrast(rgb, INK_ON_ACCENT);
    (ratio < MIN_CONTRAST).then(|| {
        format!(
            "text on this colour would have a contrast of {ratio:.2}:1; at least {MIN_CONTRAST}:1 is needed (choose a lighter colour)"
        )
    })
}

fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// WCAG 2 contrast ratio between two sRGB colours.
pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

fn luminance(rgb: [u8; 3]) -> f64 {
    let channel = |v: u8| {
        let c = f64::from(v) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

/// An `https://` address with a host, no credentials, no characters that need quoting.
pub fn logo_problem(s: &str) -> Option<String> {
    if s.chars().count() > LOGO_URL_MAX {
        return Some(format!("must be at most {LOGO_URL_MAX} characters"));
    }
    let Ok(url) = url::Url::parse(s) else {
        return Some("must be an https:// address".into());
    };
    // Written out as `https://host…`: the URL standard also reads `https:host` or
    // `https:,//host` as https addresses (the fuzz target found the second), which an operator
    // reading the settings back would not recognise.
    let written_out = s
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
    if !written_out || url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Some("must be an https:// address".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials".into());
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>')
    {
        return Some("must not hold spaces, quotes or angle brackets".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_one_line_of_plain_text_of_at_most_280() {
        assert_eq!(
            plain_text("Friday is sold out; Saturday still has seats", 280),
            None
        );
        assert_eq!(
            plain_text(&"é".repeat(280), 280),
            None,
            "scalar values, not bytes"
        );
        assert!(plain_text(&"a".repeat(281), 280).is_some());
        assert!(plain_text("two\nlines", 280).is_some());
        assert!(plain_text("evil \u{202E}txt.exe", 280).is_some());
        assert!(plain_text("isolate \u{2067}x", 280).is_some());
        assert_eq!(
            plain_text("<b>not html</b>", 280),
            None,
            "allowed: shown as text"
        );
    }

    #[test]
    fn an_accent_needs_4_5_to_1_against_the_dark_text() {
        assert_eq!(accent_problem("#ffb703"), None, "the default accent");
        assert_eq!(accent_problem("#FFFFFF"), None);
        let dark = accent_problem("#1b1d36").expect("too dark");
        assert!(dark.contains("contrast"), "{dark}");
        assert!(accent_problem("#333333").is_some());
        assert!(accent_problem("ffb703").is_some());
        assert!(accent_problem("#ffb70").is_some());
        assert!(accent_problem("#gggggg").is_some());
        // The WCAG reference: black on white is 21:1.
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
    }

    #[test]
    fn a_logo_is_an_https_address_and_nothing_else() {
        assert_eq!(logo_problem("https://cdn.example.com/logo.png"), None);
        for bad in [
            "http://cdn.example.com/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://user:pw@cdn.example.com/x.png",
            "https://cdn.example.com/a\"onerror=\"x.png",
            "//cdn.example.com/x.png",
            "https:cdn.example.com/x.png",
            "https:,//cdn.example.com/x.png",
        ] {
            assert!(logo_problem(bad).is_some(), "{bad}");
        }
    }
}
