//! The pages' static files (CSS and scripts), each served under a name carrying its content
//! hash so it can be cached for a year, and the page templates' slots filled with those names.

use std::collections::HashMap;

use axum::response::Html;
use sha2::{Digest, Sha256};

const FILES: [(&str, &str, &str); 7] = [
    (
        "marquee.css",
        "text/css; charset=utf-8",
        include_str!("../assets/marquee.css"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/i18n.js"),
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
    (
        "ticket.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ticket.js"),
    ),
    (
        "find.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/find.js"),
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

    /// Fill a page template's `{{…}}` slots: the assets' hashed names, and `slots`' values
    /// (`{{event}}`, say), which the caller has checked hold nothing HTML would read as markup.
    pub fn page(&self, template: &str, slots: &[(&str, &str)]) -> Html<String> {
        let mut html = template
            .replace("{{css}}", &self.url("marquee.css"))
            .replace("{{i18n_js}}", &self.url("i18n.js"))
            .replace("{{waiting_js}}", &self.url("waiting-room.js"))
            .replace("{{booking_js}}", &self.url("booking.js"))
            .replace("{{console_js}}", &self.url("console.js"))
            .replace("{{ticket_js}}", &self.url("ticket.js"))
            .replace("{{find_js}}", &self.url("find.js"));
        for (name, value) in slots {
            html = html.replace(&format!("{{{{{name}}}}}"), value);
        }
        Html(html)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::FILES;

    fn gzipped(text: &str) -> usize {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(text.as_bytes()).unwrap();
        z.finish().unwrap().len()
    }

    fn file(name: &str) -> &'static str {
        FILES.iter().find(|(n, _, _)| *n == name).unwrap().2
    }

    /// Each page with its stylesheet and script, gzipped, fits a crowded mobile network's
    /// budget of 60 KB (README, "The fans' pages"; the ticket's QR code aside).
    #[test]
    fn every_page_with_its_css_and_script_is_under_60_kb_gzipped() {
        let pages = [
            (
                "waiting room",
                include_str!("../assets/waiting-room.html"),
                "waiting-room.js",
            ),
            (
                "booking",
                include_str!("../assets/booking.html"),
                "booking.js",
            ),
            ("ticket", include_str!("../assets/ticket.html"), "ticket.js"),
            (
                "console",
                include_str!("../assets/console.html"),
                "console.js",
            ),
        ];
        for (page, html, script) in pages {
            // The three fans' pages carry the i18n script and their language's strings (the
            // whole of the largest table counted, Hindi's, though a page embeds only its own).
            let words = if page == "console" {
                0
            } else {
                gzipped(file("i18n.js")) + gzipped(include_str!("../assets/i18n/hi.json"))
            };
            let total =
                gzipped(html) + gzipped(file("marquee.css")) + gzipped(file(script)) + words;
            println!("{page}: {total} bytes gzipped");
            assert!(total <= 60 * 1024, "{page} is {total} bytes gzipped");
        }
    }
}
