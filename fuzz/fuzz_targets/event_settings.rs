//! An event's settings, both ways they arrive: the JSON booking-core publishes to Redis and
//! every gateway and worker parses back (`marquee_parsers::event_settings`), which must
//! round-trip exactly when it parses at all; and the presentation fields of an admin create or
//! change (`marquee_parsers::presentation`), where anything accepted is one line of plain text,
//! a colour with enough contrast, or an https address, as the pages rely on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marquee_parsers::event_settings::LiveSettings;
use marquee_parsers::form::Fields;
use marquee_parsers::presentation::{self, Change};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(settings) = serde_json::from_slice::<LiveSettings>(data) {
        let again: LiveSettings =
            serde_json::from_str(&settings.to_json()).expect("what we write, we read");
        assert_eq!(again, settings);
        let now = settings.opens_at;
        let _ = (settings.effective_state(now), settings.passes_through(now));
    }

    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(mut f) = Fields::new(&body) else {
        return;
    };
    let shown = presentation::read(&mut f);
    let problems = f.done().err().map(|e| e.0).unwrap_or_default();
    let set = |c: &Change| match c {
        Change::Set(v) => Some(v.clone()),
        _ => None,
    };
    for (name, value, max) in [
        ("message", set(&shown.message), presentation::MESSAGE_MAX),
        (
            "display_name",
            set(&shown.display_name),
            presentation::DISPLAY_NAME_MAX,
        ),
    ] {
        if let Some(v) = value {
            assert_eq!(presentation::plain_text(&v, max), None, "{name}: {v:?}");
            assert!(!problems.iter().any(|p| p.field == name));
        }
    }
    if let Some(colour) = set(&shown.accent_color) {
        assert_eq!(presentation::accent_problem(&colour), None);
        assert_eq!(colour, colour.to_ascii_lowercase());
    }
    if let Some(logo) = set(&shown.logo_url) {
        assert!(logo[..8].eq_ignore_ascii_case("https://"), "{logo}");
        assert!(!logo.contains(['"', '<', '>', ' ']));
    }
});
