//! The fans' pages in their language (issue 19): English, Hindi, Spanish and French, chosen by
//! the switcher's cookie, else `Accept-Language`, else English; every slot filled, the page's
//! strings embedded for its script, `Content-Language` said.

use serde_json::json;

use marquee_e2e::stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_speaks_the_fans_language() {
    let s = stack(1, |s| s).await;
    let event = s.event(json!({})).await;
    let pages = [
        format!("/e/{event}"),
        format!("/b/{event}"),
        "/t/r_some-reservation-id".to_owned(),
    ];
    // (Accept-Language, cookie, the language, a phrase of the waiting page in it)
    let cases = [
        (None, None, "en", "Waiting room"),
        (Some("hi-IN,hi;q=0.9,en;q=0.5"), None, "hi", "प्रतीक्षा कक्ष"),
        (
            Some("de-DE, es;q=0.7, fr;q=0.6"),
            None,
            "es",
            "Sala de espera",
        ),
        (Some("es"), Some("fr"), "fr", "Salle d’attente"),
        (Some("de, ja"), None, "en", "Waiting room"),
    ];
    for (accept, cookie, lang, phrase) in cases {
        for (i, page) in pages.iter().enumerate() {
            let mut req = s.http.get(s.at(page));
            if let Some(a) = accept {
                req = req.header("accept-language", a);
            }
            if let Some(c) = cookie {
                req = req.header("cookie", format!("marquee_lang={c}"));
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 200, "{page}");
            assert_eq!(res.headers()["content-language"], lang, "{page} {accept:?}");
            let html = res.text().await.unwrap();
            assert!(
                html.contains(&format!("<html lang=\"{lang}\">")),
                "{page}: {lang}"
            );
            assert!(!html.contains("{{"), "{page}: an unfilled slot");
            assert!(
                html.contains(r#"<script type="application/json" id="strings">{"#),
                "{page}"
            );
            if i == 0 {
                assert!(html.contains(phrase), "{page} in {lang}: {phrase}");
            }
        }
    }
}
