//! A show's seat layout as `POST /admin/v1/shows` takes it (API.md): rows of seats, each row
//! in one price category, aisles after named seats, wheelchair spaces and companion seats by
//! row and number. Checked whole (every problem reported at once), then turned into one
//! `SeatSpec` per seat for the insert.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::form::Fields;

/// What a seat is for, as the `seats.kind` column and the seat map spell it: an ordinary seat,
/// a wheelchair space, or a companion seat beside one (marked in the show's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
#[cfg_attr(feature = "sqlx", sqlx(type_name = "text", rename_all = "lowercase"))]
#[serde(rename_all = "lowercase")]
pub enum SeatKind {
    Standard,
    Wheelchair,
    Companion,
}

impl SeatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Wheelchair => "wheelchair",
            Self::Companion => "companion",
        }
    }
}

pub const MAX_ROWS: usize = 200;
pub const MAX_SEATS_PER_ROW: i64 = 500;
pub const MAX_SEATS: usize = 20_000;
pub const MAX_CATEGORIES: usize = 10;
/// The dearest seat, in cents (a show's `price_cents` and each category's).
pub const MAX_PRICE_CENTS: i64 = 100_000_000;
/// The category of a show that names none: its single `price_cents`.
pub const DEFAULT_CATEGORY: &str = "Standard";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    name: String,
    seats: i64,
    category: usize,
    gaps_after: Vec<i64>,
}

/// A checked layout.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub categories: Vec<Category>,
    rows: Vec<Row>,
    wheelchair: Vec<(String, i64)>,
    companion: Vec<(String, i64)>,
}

/// One seat as it is inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSpec {
    pub id: String,
    pub row: String,
    pub row_index: i32,
    pub number: i32,
    pub category: String,
    pub price_cents: i64,
    pub kind: SeatKind,
    pub gap_after: bool,
}

/// The show's single `price_cents` (optional: categories may carry their own prices).
pub fn price(f: &mut Fields<'_>) -> Option<i64> {
    f.int("price_cents", 0, MAX_PRICE_CENTS, false)
}

impl Layout {
    /// The layout in `f`'s `layout` field; `price` is the show's single `price_cents`, which
    /// is required when the layout names no categories.
    pub fn read(f: &mut Fields<'_>, price: Option<i64>) -> Self {
        let Some(Value::Object(l)) = f.map.get("layout") else {
            f.check.require(false, "layout", "must be an object");
            return Self::default();
        };
        let categories = match l.get("categories") {
            None | Some(Value::Null) => {
                f.check.require(
                    price.is_some(),
                    "price_cents",
                    "is required when the layout names no categories",
                );
                vec![Category {
                    name: DEFAULT_CATEGORY.into(),
                    price_cents: price.unwrap_or(0),
                }]
            }
            Some(list) => categories(f, list),
        };
        let named = l.get("categories").is_some_and(|c| !c.is_null());
        let rows = rows(f, l, &categories, named);
        let mut layout = Self {
            categories,
            rows,
            wheelchair: Vec::new(),
            companion: Vec::new(),
        };
        layout.wheelchair = layout.places(f, l, "wheelchair");
        layout.companion = layout.places(f, l, "companion");
        for (i, (row, number)) in layout.companion.iter().enumerate() {
            f.check.require(
                !layout.wheelchair.contains(&(row.clone(), *number)),
                &format!("layout.companion[{i}]"),
                "is already a wheelchair space",
            );
        }
        layout
    }

    /// The cheapest category's price: what the catalog shows as the show's price.
    pub fn lowest_price(&self) -> i64 {
        self.categories
            .iter()
            .map(|c| c.price_cents)
            .min()
            .unwrap_or(0)
    }

    /// Every seat, row by row, in seat order.
    pub fn seats(&self) -> Vec<SeatSpec> {
        let mut out = Vec::new();
        for (index, row) in self.rows.iter().enumerate() {
            let category = &self.categories[row.category];
            for n in 1..=row.seats {
                let place = (row.name.clone(), n);
                let kind = if self.wheelchair.contains(&place) {
                    SeatKind::Wheelchair
                } else if self.companion.contains(&place) {
                    SeatKind::Companion
                } else {
                    SeatKind::Standard
                };
                out.push(SeatSpec {
                    id: format!("{}-{n}", row.name),
                    row: row.name.clone(),
                    row_index: index as i32,
                    number: n as i32,
                    category: category.name.clone(),
                    price_cents: category.price_cents,
                    kind,
                    gap_after: row.gaps_after.contains(&n),
                });
            }
        }
        out
    }

    /// `layout.{key}`: a list of `{row, number}` naming seats of this layout.
    fn places(&self, f: &mut Fields<'_>, l: &Map<String, Value>, key: &str) -> Vec<(String, i64)> {
        let list = match l.get(key) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(list)) => list,
            Some(_) => {
                f.check.require(
                    false,
                    &format!("layout.{key}"),
                    "must be a list of {row, number}",
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, place) in list.iter().enumerate() {
            let row = place.get("row").and_then(Value::as_str);
            let number = place.get("number").and_then(Value::as_i64);
            let exists = match (row, number) {
                (Some(r), Some(n)) => self
                    .rows
                    .iter()
                    .any(|row| row.name == r && (1..=row.seats).contains(&n)),
                _ => false,
            };
            f.check.require(
                exists,
                &format!("layout.{key}[{i}]"),
                "must name a seat of the layout as {row, number}",
            );
            if let (true, Some(r), Some(n)) = (exists, row, number) {
                out.push((r.to_owned(), n));
            }
        }
        out
    }
}

fn categories(f: &mut Fields<'_>, list: &Value) -> Vec<Category> {
    let Value::Array(list) = list else {
        f.check.require(
            false,
            "layout.categories",
            "must be a list of {name, price_cents}",
        );
        return Vec::new();
    };
    f.check.require(
        !list.is_empty() && list.len() <= MAX_CATEGORIES,
        "layout.categories",
        &format!("must have 1 to {MAX_CATEGORIES} categories"),
    );
    let mut out: Vec<Category> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).map(str::trim);
        let price = c.get("price_cents").and_then(Value::as_i64);
        let name_ok = name.is_some_and(|n| {
            !n.is_empty() && n.chars().count() <= 40 && !n.chars().any(char::is_control)
        });
        f.check.require(
            name_ok,
            &format!("layout.categories[{i}].name"),
            "must be 1 to 40 characters",
        );
        f.check.require(
            price.is_some_and(|p| (0..=MAX_PRICE_CENTS).contains(&p)),
            &format!("layout.categories[{i}].price_cents"),
            &format!("must be a whole number of cents from 0 to {MAX_PRICE_CENTS}"),
        );
        if let (true, Some(n), Some(p)) = (name_ok, name, price) {
            f.check.require(
                !out.iter().any(|o| o.name == n),
                &format!("layout.categories[{i}].name"),
                "names a category twice",
            );
            out.push(Category {
                name: n.to_owned(),
                price_cents: p,
            });
        }
    }
    out
}

fn rows(
    f: &mut Fields<'_>,
    l: &Map<String, Value>,
    categories: &[Category],
    named: bool,
) -> Vec<Row> {
    let Some(Value::Array(rows)) = l.get("rows") else {
        f.check
            .require(false, "layout.rows", "must be a list of rows");
        return Vec::new();
    };
    f.check.require(
        !rows.is_empty() && rows.len() <= MAX_ROWS,
        "layout.rows",
        &format!("must have 1 to {MAX_ROWS} rows"),
    );
    let mut out: Vec<Row> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let at = |field: &str| format!("layout.rows[{i}].{field}");
        let name = row.get("name").and_then(Value::as_str);
        let seats = row.get("seats").and_then(Value::as_i64);
        let name_ok = name.is_some_and(|n| {
            !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        f.check
            .require(name_ok, &at("name"), "must be 1 to 8 letters or digits");
        f.check.require(
            seats.is_some_and(|s| (1..=MAX_SEATS_PER_ROW).contains(&s)),
            &at("seats"),
            &format!("must be a count from 1 to {MAX_SEATS_PER_ROW}"),
        );
        let category = if named {
            let wanted = row.get("category").and_then(Value::as_str);
            let found = wanted.and_then(|w| categories.iter().position(|c| c.name == w));
            f.check.require(
                found.is_some(),
                &at("category"),
                "must name one of layout.categories",
            );
            found
        } else {
            f.check.require(
                row.get("category").is_none_or(Value::is_null),
                &at("category"),
                "needs layout.categories to name it",
            );
            Some(0)
        };
        let gaps_after = match row.get("gaps_after") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(g)) => {
                let gaps: Vec<i64> = g.iter().filter_map(Value::as_i64).collect();
                let within = seats.unwrap_or(0);
                f.check.require(
                    gaps.len() == g.len() && gaps.iter().all(|n| (1..within).contains(n)),
                    &at("gaps_after"),
                    "must list seat numbers of the row, before its last seat",
                );
                gaps
            }
            Some(_) => {
                f.check
                    .require(false, &at("gaps_after"), "must be a list of seat numbers");
                Vec::new()
            }
        };
        if let (Some(n), Some(s), Some(c)) = (name, seats, category) {
            f.check.require(
                !out.iter().any(|o| o.name == n),
                &at("name"),
                "names a row twice",
            );
            out.push(Row {
                name: n.to_owned(),
                seats: s,
                category: c,
                gaps_after,
            });
        }
    }
    let total: i64 = out.iter().map(|r| r.seats).sum();
    f.check.require(
        total as usize <= MAX_SEATS,
        "layout.rows",
        &format!("at most {MAX_SEATS} seats in one show"),
    );
    out
}
