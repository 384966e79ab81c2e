//! A show's seats and bookings live in one hash partition of each table (migration 2: 16 of
//! them, `seats_pN` and `bookings_pN` with remainder N). A statement on a partitioned parent
//! is planned again on every execution so that the planner can prune partitions: about a
//! millisecond for the hold statement, more than it takes to run. The same statement naming
//! the show's partitions is planned once per connection (a generic plan). So the hot
//! statements come in one variant per partition plus one on the parents, and a show's
//! partition is asked of Postgres itself, never computed here: if the tables are ever
//! partitioned differently, the lookup finds nothing and the parents' variant is used.

use std::sync::LazyLock;

use sqlx::PgPool;

/// The partitions migration 2 created for each of `seats` and `bookings`.
const MODULUS: i32 = 16;

/// A statement written against `{seats}` and `{bookings}` (each followed by `AS seats` /
/// `AS bookings` where it is referred to), in every variant.
pub struct PerPartition(LazyLock<Vec<String>>);

impl PerPartition {
    pub const fn new(build: fn() -> Vec<String>) -> Self {
        Self(LazyLock::new(build))
    }

    /// The variant for `partition`, or the parents' when it is unknown.
    pub fn get(&'static self, partition: Option<i32>) -> &'static str {
        let variants = &*self.0;
        let i = partition
            .and_then(|p| usize::try_from(p).ok())
            .filter(|&p| p + 1 < variants.len())
            .unwrap_or(variants.len() - 1);
        &variants[i]
    }
}

/// Every variant of `template`: one per partition, then the parents.
pub fn variants(template: &str) -> Vec<String> {
    (0..MODULUS)
        .map(|p| {
            template
                .replace("{seats}", &format!("seats_p{p}"))
                .replace("{bookings}", &format!("bookings_p{p}"))
        })
        .chain([template
            .replace("{seats}", "seats")
            .replace("{bookings}", "bookings")])
        .collect()
}

/// The partition holding `show_id`'s seats and bookings: the remainder `N` for which the key
/// belongs in both `seats_pN` and `bookings_pN`, and those are the tables' partitions for it.
pub async fn of_show(db: &PgPool, show_id: &str) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r FROM generate_series(0, $2 - 1) r
         WHERE satisfies_hash_partition('seats'::regclass, $2, r, $1::text)
           AND satisfies_hash_partition('bookings'::regclass, $2, r, $1::text)
           AND (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
                WHERE c.oid = to_regclass('seats_p' || r) AND i.inhparent = 'seats'::regclass)
               = format('FOR VALUES WITH (modulus %s, remainder %s)', $2, r)
           AND (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
                WHERE c.oid = to_regclass('bookings_p' || r) AND i.inhparent = 'bookings'::regclass)
               = format('FOR VALUES WITH (modulus %s, remainder %s)', $2, r)",
    )
    .bind(show_id)
    .bind(MODULUS)
    .fetch_optional(db)
    .await
}
