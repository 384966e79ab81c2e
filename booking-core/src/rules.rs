//! The rules that many statements share, written once as SQL fragments for `concat!`: when a
//! seat may be taken, when a hold is live or has lapsed, and what "the seat goes back on sale"
//! writes. A lapsed hold counts as free everywhere at once, whether or not the sweeper has run.
//! Each macro takes an optional table alias: `seat_free!()` or `seat_free!("s")`.

/// A seat may be taken: available, or held past its window.
#[macro_export]
macro_rules! seat_free {
    () => {
        "(status = 'available' OR (status = 'held' AND held_until <= now()))"
    };
    ($t:literal) => {
        concat!(
            "(",
            $t,
            ".status = 'available' OR (",
            $t,
            ".status = 'held' AND ",
            $t,
            ".held_until <= now()))"
        )
    };
}

/// A seat's hold has lapsed: marked held, but past its window (it reads as available).
#[macro_export]
macro_rules! seat_lapsed {
    () => {
        "(status = 'held' AND held_until <= now())"
    };
    ($t:literal) => {
        concat!(
            "(",
            $t,
            ".status = 'held' AND ",
            $t,
            ".held_until <= now())"
        )
    };
}

/// A seat is held and its hold is still live.
#[macro_export]
macro_rules! seat_held_live {
    ($t:literal) => {
        concat!("(", $t, ".status = 'held' AND ", $t, ".held_until > now())")
    };
}

/// What a seat going back on sale writes (`UPDATE seats SET …`).
#[macro_export]
macro_rules! seat_back_on_sale {
    () => {
        "status = 'available', booking_id = NULL, held_until = NULL, \
         version = nextval('seat_version_seq')"
    };
}

/// A booking is a live hold.
#[macro_export]
macro_rules! hold_live {
    () => {
        "(status = 'held' AND expires_at > now())"
    };
}

/// A booking is a hold past its window, which the sweeper (or the next reserve) ends.
#[macro_export]
macro_rules! hold_lapsed {
    () => {
        "(status = 'held' AND expires_at <= now())"
    };
    ($t:literal) => {
        concat!(
            "(",
            $t,
            ".status = 'held' AND ",
            $t,
            ".expires_at <= now())"
        )
    };
}
