//! The fans' pages in several languages (issue 19): English, Hindi, Spanish and French, each a
//! translation file (`assets/i18n/{lang}.json`, one flat table of keys shared by the waiting,
//! booking and ticket pages). The language is the fan's choice (the switcher's cookie), else
//! the best of `Accept-Language`, else English. A page's own text is filled in here, before it
//! is sent (`{{t.key}}` slots, escaped for HTML); what its script says it reads from the table
//! embedded in the page as JSON data (`{{strings}}`), never from strings in the script.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use http::HeaderMap;

/// The cookie the language switcher sets.
pub const COOKIE: &str = "marquee_lang";

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Hi,
    Es,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::Hi, Lang::Es, Lang::Fr];

    /// The BCP 47 tag (`lang`, `Intl`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Hi => "hi",
            Self::Es => "es",
            Self::Fr => "fr",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Self::En => include_str!("../assets/i18n/en.json"),
            Self::Hi => include_str!("../assets/i18n/hi.json"),
            Self::Es => include_str!("../assets/i18n/es.json"),
            Self::Fr => include_str!("../assets/i18n/fr.json"),
        }
    }

    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.tag() == primary)
    }
}

/// Each language's table, parsed once (a broken file fails the unit tests, and the gateway at
/// start rather than a fan's page).
static TABLES: LazyLock<Vec<(Lang, BTreeMap<String, String>)>> = LazyLock::new(|| {
    Lang::ALL
        .into_iter()
        .map(|l| {
            let table: BTreeMap<String, String> = serde_json::from_str(l.source())
                .unwrap_or_else(|e| panic!("assets/i18n/{}.json: {e}", l.tag()));
            (l, table)
        })
        .collect()
});

fn table(lang: Lang) -> &'static BTreeMap<String, String> {
    &TABLES
        .iter()
        .find(|(l, _)| *l == lang)
        .expect("every language")
        .1
}

/// Parse every table now (the gateway calls this at start).
pub fn check() {
    LazyLock::force(&TABLES);
}

/// The fan's language: the switcher's cookie, else the first of `Accept-Language` (by q) that
/// the pages speak, else English.
pub fn negotiate(headers: &HeaderMap) -> Lang {
    if let Some(lang) =
        marquee_platform::http::cookie(headers, COOKIE).and_then(|v| Lang::parse(&v))
    {
        return lang;
    }
    let Some(accept) = headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::En;
    };
    let mut offered: Vec<(f32, Lang)> = accept
        .split(',')
        .filter_map(|part| {
            let mut bits = part.split(';');
            let lang = Lang::parse(bits.next()?)?;
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, lang))
        })
        .collect();
    // Stable: among equal weights the first listed wins.
    offered.sort_by(|a, b| b.0.total_cmp(&a.0));
    offered.first().map_or(Lang::En, |(_, l)| *l)
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page template in `lang`: its `{{t.key}}` slots filled (escaped), `{{lang}}` and
/// `{{strings}}` (the keys under `sections` and `common.`, as JSON data the script reads; `<`
/// escaped so it cannot end the element). A key missing from the language falls back to
/// English.
pub fn render(template: &str, lang: Lang, sections: &[&str]) -> String {
    let (own, en) = (table(lang), table(Lang::En));
    let mut out = String::with_capacity(template.len() + 4096);
    let mut rest = template;
    while let Some(start) = rest.find("{{t.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let key = &after[..end];
        let text = own
            .get(key)
            .or_else(|| en.get(key))
            .map_or(key, String::as_str);
        out.push_str(&escape_html(text));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    let wanted: BTreeMap<&String, &String> = own
        .iter()
        .filter(|(k, _)| {
            k.starts_with("common.")
                || sections
                    .iter()
                    .any(|s| k.strip_prefix(s).is_some_and(|r| r.starts_with('.')))
        })
        .collect();
    let strings = serde_json::to_string(&wanted)
        .expect("a table serializes")
        .replace('<', "\\u003c");
    out.replace("{{lang}}", lang.tag())
        .replace("{{strings}}", &strings)
}

/// `render`, once per template and language (three pages, four languages): the pages are
/// `no-store`, so each fan's visit would otherwise render its page again.
pub fn page(template: &'static str, lang: Lang, sections: &[&str]) -> &'static str {
    static CACHE: LazyLock<
        std::sync::Mutex<std::collections::HashMap<(usize, &'static str), &'static str>>,
    > = LazyLock::new(Default::default);
    let key = (template.as_ptr() as usize, lang.tag());
    let mut cache = CACHE.lock().expect("i18n cache");
    cache
        .entry(key)
        .or_insert_with(|| Box::leak(render(template, lang, sections).into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<&str> {
        let mut out: Vec<&str> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(name, _)| name))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn every_language_has_every_key_with_the_same_placeholders() {
        let en = table(Lang::En);
        for lang in Lang::ALL {
            let t = table(lang);
            let missing: Vec<&String> = en.keys().filter(|k| !t.contains_key(*k)).collect();
            let extra: Vec<&String> = t.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{}: missing {missing:?}, extra {extra:?}",
                lang.tag()
            );
            for (k, v) in t {
                assert_eq!(placeholders(v), placeholders(&en[k]), "{}: {k}", lang.tag());
                assert!(!v.trim().is_empty(), "{}: {k} is empty", lang.tag());
            }
        }
    }

    #[test]
    fn every_slot_in_the_pages_is_a_key() {
        let en = table(Lang::En);
        for page in [
            include_str!("../assets/waiting-room.html"),
            include_str!("../assets/booking.html"),
            include_str!("../assets/ticket.html"),
        ] {
            for slot in page.split("{{t.").skip(1) {
                let key = slot.split("}}").next().unwrap();
                assert!(en.contains_key(key), "no key {key}");
            }
        }
    }

    #[test]
    fn the_language_is_the_cookie_else_the_best_accepted_else_english() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h), Lang::En);
        h.insert(
            http::header::ACCEPT_LANGUAGE,
            "de-DE, fr;q=0.8, hi;q=0.9".parse().unwrap(),
        );
        assert_eq!(
            negotiate(&h),
            Lang::Hi,
            "German is not spoken; Hindi is preferred to French"
        );
        h.insert(
            http::header::ACCEPT_LANGUAGE,
            "es-MX,es;q=0.9,en;q=0.8".parse().unwrap(),
        );
        assert_eq!(negotiate(&h), Lang::Es);
        h.insert(http::header::COOKIE, "marquee_lang=fr".parse().unwrap());
        assert_eq!(negotiate(&h), Lang::Fr, "the switcher wins");
    }

    #[test]
    fn slots_are_filled_and_escaped() {
        let html = render(
            "<html lang=\"{{lang}}\"><h1>{{t.wait.title}}</h1><script type=\"application/json\">{{strings}}</script>",
            Lang::Fr,
            &["wait"],
        );
        assert!(html.starts_with("<html lang=\"fr\">"));
        assert!(
            html.contains("wait.next") && !html.contains("book.pay"),
            "only the page's strings"
        );
        assert!(!html.contains("{{"), "{html}");
        assert!(!html[html.find("<script").unwrap()..].contains("</h1>"));
    }
}
