//! Catalog searches (`GET /v1/movies`) kept at the edge for what is left of their lifetime at
//! booking-core, which marks each answer `Cache-Control: public, max-age=N` with the whole
//! seconds its own copy still counts: a search many fans ask within that time crosses to
//! booking-core once per gateway, and no answer is older than booking-core's would be.
//! Answers vary by `Accept-Encoding` (booking-core gzips for clients that take it), so that
//! header is part of what an answer is kept by, as any HTTP cache keeps a `Vary`ing answer.
//! An operator's change through this gateway (anything but a read of `/admin/…`) forgets
//! them all, as booking-core forgets its own on a change.
//!
//! Bounded by `[gateway] catalog_cache_bytes`: when full, answers past their time are swept
//! out and, if there is still no room, a new answer is passed on without being kept until
//! there is: the searches asked most come first within each lifetime, so those are the ones
//! kept (at the design's scale a gzip answer is ~15 KB and the 4,000 most asked of this
//! mix's 17,600 searches are four fifths of what fans ask: BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY,
};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// An answer longer than this passes through as it comes, never kept (a city's week at the
/// design's scale is ~430 KB plain).
pub const KEPT_MAX: u64 = 1024 * 1024;

/// What an answer kept costs besides its key and body (its entry, headers and time), counted
/// against the capacity.
const ENTRY_BYTES: usize = 256;

/// How often, at most, a full cache sweeps out answers past their time.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// The headers of booking-core's answer that a kept answer is given again (with
/// `Cache-Control` for what is left of its lifetime).
const KEPT_HEADERS: [http::HeaderName; 3] = [CONTENT_TYPE, CONTENT_ENCODING, VARY];

pub struct CatalogCache {
    capacity: usize,
    inner: Mutex<Inner>,
    /// `marquee_catalog_answers_total{from}`: `kept` (at this gateway) or `booking_core`.
    answers: IntCounterVec,
    /// `marquee_catalog_kept_bytes`: what the answers kept count for against the capacity.
    kept_bytes: IntGauge,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Kept>,
    bytes: usize,
    swept: Option<Instant>,
    /// Moved on by `clear`: an answer asked for before is not kept.
    generation: u64,
}

struct Kept {
    until: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl CatalogCache {
    /// Answers up to `capacity` bytes in all (0: none kept), counted in `registry`.
    pub fn new(capacity: usize, registry: &Registry) -> Self {
        let answers = IntCounterVec::new(
            Opts::new(
                "catalog_answers_total",
                "Catalog searches answered, by where from: kept at the gateway, or booking-core",
            ),
            &["from"],
        )
        .expect("valid metric");
        let _ = registry.register(Box::new(answers.clone()));
        let kept_bytes = IntGauge::new(
            "catalog_kept_bytes",
            "Bytes of catalog searches' answers kept at the gateway (with their keys and entries)",
        )
        .expect("valid metric");
        let _ = registry.register(Box::new(kept_bytes.clone()));
        Self {
            capacity,
            inner: Mutex::default(),
            answers,
            kept_bytes,
        }
    }

    /// What a search's answer is kept by: its path and query, and the encodings it takes.
    pub fn key<B>(req: &Request<B>) -> String {
        let asked = req.uri().path_and_query().map_or("", |p| p.as_str());
        let takes = req.headers().get_all(ACCEPT_ENCODING).iter();
        let mut key = String::with_capacity(asked.len() + 32);
        key += asked;
        for v in takes {
            key.push('\n');
            key += v.to_str().unwrap_or("?");
        }
        key
    }

    /// The answer kept for `key`, if its time has not passed (else booking-core is to answer).
    pub fn get(&self, key: &str) -> Option<Response> {
        let now = Instant::now();
        let (headers, body, left) = {
            let inner = self.inner.lock().expect("catalog cache");
            let Some(kept) = inner.entries.get(key).filter(|k| now < k.until) else {
                self.answers.with_label_values(&["booking_core"]).inc();
                return None;
            };
            (kept.headers.clone(), kept.body.clone(), kept.until - now)
        };
        self.answers.with_label_values(&["kept"]).inc();
        let mut res = Response::new(Body::from(body));
        *res.headers_mut() = headers;
        res.headers_mut().insert(CACHE_CONTROL, max_age(left));
        Some(res)
    }

    /// How long booking-core's answer may be kept: a `200` marked `public` with a `max-age`
    /// above 0 (and nothing that forbids keeping it), of a known length up to `KEPT_MAX`.
    pub fn lifetime(&self, res: &Response) -> Option<Duration> {
        if self.capacity == 0 || res.status() != StatusCode::OK {
            return None;
        }
        let length = res.headers().get(CONTENT_LENGTH)?.to_str().ok()?;
        if length.parse::<u64>().ok()? > KEPT_MAX {
            return None;
        }
        let control = res.headers().get(CACHE_CONTROL)?.to_str().ok()?;
        let mut public = false;
        let mut seconds = None;
        for directive in control.split(',').map(str::trim) {
            let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
            match name.to_ascii_lowercase().as_str() {
                "public" => public = true,
                "max-age" => seconds = value.trim_matches('"').parse::<u64>().ok(),
                "no-store" | "no-cache" | "private" => return None,
                _ => {}
            }
        }
        Some(Duration::from_secs(seconds?)).filter(|d| public && !d.is_zero())
    }

    /// Where the cache is: an answer asked for now is kept only if nothing clears it before
    /// it comes (`keep`).
    pub fn generation(&self) -> u64 {
        self.inner.lock().expect("catalog cache").generation
    }

    /// Keep booking-core's answer (`headers`, `body`) for `lifetime`, if there is room and the
    /// cache was not cleared since it was asked for (at `asked`: the answer may be from
    /// before the change that cleared it). Both are copied: as read, each is a slice of the
    /// connection's read buffer (up to 64 KiB), which keeping the slice would keep whole (a
    /// run at the design's scale held ~190 MiB for 64 MiB of answers before this).
    pub fn keep(
        &self,
        key: String,
        asked: u64,
        lifetime: Duration,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let now = Instant::now();
        let size = key.len() + body.len() + ENTRY_BYTES;
        let mut inner = self.inner.lock().expect("catalog cache");
        if inner.generation != asked {
            return;
        }
        if inner.bytes + size > self.capacity
            && inner
                .swept
                .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            inner.swept = Some(now);
            let mut freed = 0;
            inner.entries.retain(|k, kept| {
                let current = now < kept.until;
                if !current {
                    freed += k.len() + kept.body.len() + ENTRY_BYTES;
                }
                current
            });
            inner.bytes -= freed;
        }
        self.kept_bytes.set(inner.bytes as i64);
        if inner.bytes + size > self.capacity {
            return;
        }
        let mut kept = HeaderMap::with_capacity(KEPT_HEADERS.len() + 1);
        for name in KEPT_HEADERS {
            // Copied, as the body is: a header as read is a slice of the same buffer.
            if let Some(v) = headers.get(&name)
                && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
            {
                kept.insert(name, v);
            }
        }
        let until = now + lifetime;
        let key_len = key.len();
        inner.bytes += size;
        let kept = Kept {
            until,
            headers: kept,
            body: Bytes::copy_from_slice(body),
        };
        if let Some(old) = inner.entries.insert(key, kept) {
            inner.bytes -= key_len + old.body.len() + ENTRY_BYTES;
        }
        self.kept_bytes.set(inner.bytes as i64);
    }

    /// Every kept answer forgotten: the catalog changed through this gateway.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("catalog cache");
        inner.entries.clear();
        inner.bytes = 0;
        inner.generation += 1;
        self.kept_bytes.set(0);
    }
}

/// `Cache-Control` for an answer with `left` of its lifetime: whole seconds, rounded down.
fn max_age(left: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={}", left.as_secs())).expect("a header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(control: &str, length: u64) -> Response {
        let mut res = Response::new(Body::empty());
        res.headers_mut()
            .insert(CACHE_CONTROL, control.parse().unwrap());
        res.headers_mut().insert(CONTENT_LENGTH, length.into());
        res
    }

    fn cache(capacity: usize) -> CatalogCache {
        CatalogCache::new(capacity, &Registry::new())
    }

    #[test]
    fn only_a_public_ok_answer_with_a_lifetime_and_a_length_is_kept() {
        let c = cache(1 << 20);
        let secs = |res: &Response| c.lifetime(res).map(|d| d.as_secs());
        assert_eq!(secs(&answer("public, max-age=4", 10)), Some(4));
        assert_eq!(secs(&answer("Max-Age=\"3\", PUBLIC", 10)), Some(3));
        assert_eq!(secs(&answer("public, max-age=0", 10)), None);
        assert_eq!(secs(&answer("max-age=4", 10)), None, "not public");
        assert_eq!(secs(&answer("public, max-age=4, no-store", 10)), None);
        assert_eq!(secs(&answer("private, max-age=4", 10)), None);
        assert_eq!(secs(&answer("public", 10)), None, "no lifetime");
        assert_eq!(
            secs(&answer("public, max-age=4", KEPT_MAX + 1)),
            None,
            "too long"
        );
        let mut unknown = answer("public, max-age=4", 10);
        unknown.headers_mut().remove(CONTENT_LENGTH);
        assert_eq!(secs(&unknown), None, "of unknown length");
        let mut missing = answer("public, max-age=4", 10);
        *missing.status_mut() = StatusCode::NOT_FOUND;
        assert_eq!(secs(&missing), None);
        assert_eq!(
            cache(0).lifetime(&answer("public, max-age=4", 10)),
            None,
            "off"
        );
    }

    #[test]
    fn a_kept_answer_is_given_again_with_what_is_left_of_its_lifetime_until_full() {
        let c = cache(100 + 2 * ENTRY_BYTES);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        headers.insert("x-request-id", "someone else's".parse().unwrap());
        let life = Duration::from_secs(4);
        c.keep("/a".into(), c.generation(), life, &headers, &[b'a'; 40]);
        let again = c.get("/a").expect("kept");
        assert_eq!(again.headers()[CONTENT_ENCODING], "gzip");
        // Copies, not slices of what was read (which would keep the whole read buffer).
        let at = |v: &HeaderValue| v.as_bytes().as_ptr();
        assert_ne!(
            at(&again.headers()[CONTENT_ENCODING]),
            at(&headers[CONTENT_ENCODING])
        );
        assert!(again.headers().get("x-request-id").is_none());
        let control = again.headers()[CACHE_CONTROL].to_str().unwrap().to_owned();
        assert!(["public, max-age=3", "public, max-age=4"].contains(&control.as_str()));
        assert!(c.get("/b").is_none());
        // Kept again under the same key: counted once.
        c.keep("/a".into(), c.generation(), life, &headers, &[b'a'; 40]);
        c.keep("/b".into(), c.generation(), life, &headers, &[b'b'; 40]);
        assert!(c.get("/b").is_some(), "two answers' worth");
        c.keep("/c".into(), c.generation(), life, &headers, &[b'c'; 40]);
        assert!(c.get("/c").is_none(), "no room: passed on, not kept");
        assert!(c.get("/a").is_some(), "what was kept stays while it counts");
        let asked = c.generation();
        c.clear();
        assert!(c.get("/a").is_none());
        c.keep("/d".into(), asked, life, &headers, &[b'd'; 40]);
        assert!(
            c.get("/d").is_none(),
            "asked for before the clear: maybe from before"
        );
        c.keep("/c".into(), c.generation(), life, &headers, &[b'c'; 40]);
        assert!(c.get("/c").is_some(), "room again");
    }

    #[test]
    fn an_answer_past_its_time_is_not_given_and_makes_room() {
        let c = cache(100 + 2 * ENTRY_BYTES);
        let headers = HeaderMap::new();
        c.keep(
            "/a".into(),
            c.generation(),
            Duration::from_millis(1),
            &headers,
            &[0; 90],
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.get("/a").is_some() {
            assert!(Instant::now() < deadline, "never lapsed");
            std::thread::yield_now();
        }
        c.keep(
            "/b".into(),
            c.generation(),
            Duration::from_secs(4),
            &headers,
            &[0; 90],
        );
        assert!(c.get("/b").is_some(), "the lapsed answer swept out for it");
    }

    #[test]
    fn answers_are_kept_by_what_was_asked_and_the_encodings_taken() {
        let req = |uri: &str, takes: &[&str]| {
            let mut r = Request::get(uri).body(()).unwrap();
            for t in takes {
                r.headers_mut().append(ACCEPT_ENCODING, t.parse().unwrap());
            }
            CatalogCache::key(&r)
        };
        assert_eq!(req("/v1/movies?city=x", &[]), req("/v1/movies?city=x", &[]));
        assert_ne!(req("/v1/movies?city=x", &[]), req("/v1/movies?city=y", &[]));
        assert_ne!(
            req("/v1/movies?city=x", &[]),
            req("/v1/movies?city=x", &["gzip"])
        );
        assert_ne!(
            req("/v1/movies?city=x", &["gzip"]),
            req("/v1/movies?city=x", &["br"])
        );
    }
}
