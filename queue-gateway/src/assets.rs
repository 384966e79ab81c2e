//! The pages' static files (CSS and scripts), each served under a name carrying its content
//! hash so it can be cached for a year, and the page templates' slots filled with those names.

use std::collections::HashMap;

use axum::response::Html;
use sha2::{Digest, Sha256};

const FILES: [(&str, &str, &str); 4] = [
    (
        "marquee.css",
        "text/css; charset=utf-8",
        include_str!("../assets/marquee.css"),
    ),
    (
        "waiting-room.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/waiting-room.js"),
    ),
    (
        "booking.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/booking.js"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    ),
];

pub struct Assets {
    /// Hashed name → (content type, body).
    files: HashMap<String, (&'static str, &'static str)>,
    /// Plain name → hashed name.
    names: HashMap<&'static str, String>,
}

impl Assets {
    pub fn load() -> Self {
        let mut files = HashMap::new();
        let mut names = HashMap::new();
        for (name, ctype, body) in FILES {
            let digest = Sha256::digest(body.as_bytes());
            let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
            let (stem, ext) = name.rsplit_once('.').expect("asset names have extensions");
            let hashed = format!("{stem}.{hash}.{ext}");
            files.insert(hashed.clone(), (ctype, body));
            names.insert(name, hashed);
        }
        Self { files, names }
    }

    /// A file by its hashed name: content type and body.
    pub fn get(&self, hashed: &str) -> Option<(&'static str, &'static str)> {
        self.files.get(hashed).copied()
    }

    pub fn url(&self, name: &str) -> String {
        format!("/assets/{}", self.names[name])
    }

    /// Fill a page template's `{{…}}` slots.
    pub fn page(&self, template: &str, event: &str, payments: &str) -> Html<String> {
        Html(
            template
                .replace("{{css}}", &self.url("marquee.css"))
                .replace("{{waiting_js}}", &self.url("waiting-room.js"))
                .replace("{{booking_js}}", &self.url("booking.js"))
                .replace("{{console_js}}", &self.url("console.js"))
                .replace("{{event}}", event)
                .replace("{{payments}}", payments),
        )
    }
}
