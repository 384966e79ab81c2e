//! A show's seat layout as `POST /admin/v1/shows` takes it (`marquee_parsers::layout`): any
//! JSON body is checked without panicking, and a layout the check accepts turns into seats
//! that keep its promises: within the limits, one id per seat, every row's seats numbered from
//! 1, each at its category's price, the wheelchair and companion places it named and no others.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use marquee_parsers::form::Fields;
use marquee_parsers::layout::{self, Layout, MAX_SEATS, SeatKind};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(mut f) = Fields::new(&body) else {
        assert!(!body.is_object());
        return;
    };
    // As `POST /admin/v1/shows` reads them.
    let price = layout::price(&mut f);
    let layout = Layout::read(&mut f, price);
    if f.done().is_err() {
        return;
    }
    let seats = layout.seats();
    assert!(!seats.is_empty() && seats.len() <= MAX_SEATS);
    let ids: HashSet<&str> = seats.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), seats.len(), "a seat id twice");
    for (i, s) in seats.iter().enumerate() {
        let category = layout
            .categories
            .iter()
            .find(|c| c.name == s.category)
            .expect("a seat's category is one of the layout's");
        assert_eq!(s.price_cents, category.price_cents);
        assert!(s.number >= 1);
        let previous = i.checked_sub(1).map(|p| &seats[p]);
        match previous {
            Some(p) if p.row == s.row => assert_eq!(s.number, p.number + 1),
            _ => assert_eq!(s.number, 1, "a row starts at seat 1"),
        }
        assert!(!(s.gap_after && seats.get(i + 1).is_none_or(|n| n.row != s.row)));
    }
    let named = |key: &str| -> usize {
        let places: HashSet<(String, i64)> = body["layout"][key]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|p| {
                        let row = p["row"].as_str().unwrap_or_default().to_owned();
                        (row, p["number"].as_i64().unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        places.len()
    };
    let count = |kind: SeatKind| seats.iter().filter(|s| s.kind == kind).count();
    assert_eq!(count(SeatKind::Wheelchair), named("wheelchair"));
    assert_eq!(count(SeatKind::Companion), named("companion"));
    assert!(layout.lowest_price() >= 0);
});
