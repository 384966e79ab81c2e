//! Statistics for the partitions a sale is filling. A show on sale writes thousands of
//! bookings a minute into one partition of `bookings` (and changes as many rows of `seats`),
//! and until Postgres analyzes that partition again its planner reckons with what it held
//! before the sale: a handful of bookings for the show. The batched release
//! (`holds::give_back`, `id = ANY($2)`) then read every booking of the show for each batch
//! instead of looking its ids up, 3–7 ms a batch and growing with the sale; with the partition
//! analyzed every second or two during a hot show, the hot show's holds went from 0.58–0.68 to
//! 0.87–0.92 of pgbench's rate (BENCHMARKS.md, "What the hot show waits on"). Postgres's own
//! autovacuum analyzes a table once a tenth of it has changed, but looks only once a minute
//! (`autovacuum_naptime`), and not at all where it is turned off; an on-sale's first minute is
//! the one that matters. So booking-core analyzes, every few seconds, each partition of
//! `seats` and `bookings` that has changed by `[booking] analyze_after_changes` rows and by a
//! fifth of its size since it was last analyzed, **and grew** by half since (or shrank to
//! two thirds, or was never analyzed). Growth is what misleads the planner: between analyses it scales the rows it
//! expects by the partition's pages, so a show already among a partition's most common
//! values keeps its share as the partition fills; what it cannot know is a show that had
//! next to nothing when last analyzed. Changes that do not add rows (a hold's and a
//! release's seat updates, a release's booking update) leave the plans as they were, and
//! an `ANALYZE` of a busy partition is not cheap: 23 ms for a 10,000-seat show's partition of
//! `seats`, 170–190 ms for one of `bookings` holding 50,000 (each samples up to 30,000 rows).
//! Counting those changes too had the job analyze both on nearly every pass of a hot show
//! (BENCHMARKS.md, "Analyzed as they grow").

use sqlx::PgPool;

/// By how much a partition's live rows must have grown (or shrunk) since its last analysis
/// (its `reltuples`) to be analyzed again.
const GROWTH: f64 = 1.5;

/// The partitions of `seats` and `bookings` changed enough, and grown (or shrunk) enough,
/// since their last analysis (`reltuples` is -1 until the first), the most changed first (at
/// most four a pass).
const STALE: &str = "
    SELECT c.oid::bigint, c.relname::text
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE i.inhparent IN ('seats'::regclass, 'bookings'::regclass)
      AND s.n_mod_since_analyze >= greatest($1, 0.2 * s.n_live_tup)
      AND (c.reltuples < 0 OR s.n_live_tup >= $2 * c.reltuples OR s.n_live_tup * $2 <= c.reltuples)
    ORDER BY s.n_mod_since_analyze DESC
    LIMIT 4";

/// An advisory lock's first key for "analyzing the partition whose oid is the second": each
/// partition is analyzed by one replica at a time (two `ANALYZE`s of a table wait for each
/// other).
const ANALYZING: i32 = 0x616e_6c7a;

/// Analyze the partitions of `seats` and `bookings` changed by at least `min_changes` rows
/// (and a fifth of their size) and grown by half (or shrunk to two thirds) since they were
/// last analyzed; the ones it analyzed. `min_changes` 0 does nothing.
pub async fn run_once(db: &PgPool, min_changes: i64) -> Result<Vec<String>, sqlx::Error> {
    if min_changes <= 0 {
        return Ok(Vec::new());
    }
    let stale: Vec<(i64, String)> = sqlx::query_as(STALE)
        .bind(min_changes)
        .bind(GROWTH)
        .fetch_all(db)
        .await?;
    let mut analyzed = Vec::new();
    for (oid, table) in stale {
        let mut tx = db.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2::oid::int)")
            .bind(ANALYZING)
            .bind(oid)
            .fetch_one(&mut *tx)
            .await?;
        if mine {
            // The name comes from the catalog; quoted all the same.
            let analyze = format!("ANALYZE \"{}\"", table.replace('"', "\"\""));
            sqlx::raw_sql(sqlx::AssertSqlSafe(analyze))
                .execute(&mut *tx)
                .await?;
            analyzed.push(table);
        }
        tx.commit().await?;
    }
    Ok(analyzed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// What a pass analyzes once it analyzes anything (Postgres counts changes within a second
    /// or so of their commit), within a deadline.
    async fn analyzed_soon(db: &PgPool, what: &str) -> Vec<String> {
        marquee_testkit::wait_for(what, Duration::from_secs(10), || async {
            Some(run_once(db, 1000).await.unwrap()).filter(|a| !a.is_empty())
        })
        .await
    }

    /// A partition that a sale filled since it was last analyzed is analyzed, once; then the
    /// batched release looks its ids up instead of reading the show's every booking.
    #[tokio::test]
    async fn a_partition_a_sale_filled_is_analyzed_and_releases_look_up_their_ids() {
        let env = marquee_testkit::TestEnv::new().await;
        let db = PgPool::connect(&env.database_url).await.unwrap();
        crate::startup::MIGRATOR.run(&db).await.unwrap();
        let show = "s_hot";
        let partition = crate::partitions::of_show(&db, show)
            .await
            .unwrap()
            .expect("the show's partition");
        let bookings = |from: i32, to: i32| {
            format!(
                "INSERT INTO bookings (id, show_id, event_id, visitor_id, status, seat_ids,
                                       total_cents, currency, expires_at)
                 SELECT 'r_' || i, '{show}', 'e', 'v_' || i, 'released', ARRAY['A-' || i], 0,
                        'EUR', now()
                 FROM generate_series({from}, {to}) i"
            )
        };
        let table = format!("bookings_p{partition}");
        let mut conn = db.acquire().await.unwrap();
        for step in [
            // The bookings name no real show or event: only the plans are asked about.
            "SET session_replication_role = replica".to_owned(),
            // Only this test analyzes the partition (where autovacuum runs, it could too).
            format!("ALTER TABLE {table} SET (autovacuum_enabled = false)"),
            bookings(1, 7),
            "ANALYZE bookings".to_owned(),
            bookings(8, 6000),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        drop(conn);
        let ids: Vec<String> = (100..130).map(|i| format!("r_{i}")).collect();
        // How the partition's bookings of a batch of releases are found (`give_back`'s
        // condition): by their ids, or by the show alone.
        let by_ids = || async {
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN SELECT id FROM {table} WHERE show_id = '{show}' AND id = ANY('{{{}}}')",
                ids.join(",")
            )))
            .fetch_all(&db)
            .await
            .unwrap();
            plan.iter()
                .any(|l| l.contains("Index Cond") && l.contains("(id = ANY"))
        };
        assert!(
            !by_ids().await,
            "stale statistics: the show's bookings read whole"
        );
        assert_eq!(run_once(&db, 0).await.unwrap(), Vec::<String>::new());
        assert_eq!(
            analyzed_soon(&db, "the partition analyzed").await,
            vec![table.clone()]
        );
        assert_eq!(run_once(&db, 1000).await.unwrap(), Vec::<String>::new());
        assert!(by_ids().await, "analyzed: the batch's ids looked up");

        // Changes that add no rows (as a sale's releases are) leave it be, however many (the
        // same status again: the announcing trigger stays out of it)...
        let release_all = format!("UPDATE {table} SET status = 'released'");
        let grow = bookings(6001, 9500);
        for step in [&release_all, &release_all] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(step.clone()))
                .execute(&db)
                .await
                .unwrap();
        }
        marquee_testkit::wait_for("the updates counted", Duration::from_secs(10), || async {
            let mods: i64 = sqlx::query_scalar(
                "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = $1",
            )
            .bind(&table)
            .fetch_one(&db)
            .await
            .unwrap();
            (mods >= 12_000).then_some(())
        })
        .await;
        assert_eq!(
            run_once(&db, 1000).await.unwrap(),
            Vec::<String>::new(),
            "12,000 changes, no growth: not analyzed"
        );
        // ...and analyzes it again once it has grown by half.
        let mut conn = db.acquire().await.unwrap();
        sqlx::raw_sql("SET session_replication_role = replica")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(grow))
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(
            analyzed_soon(&db, "the grown partition analyzed").await,
            vec![table.clone()]
        );
        assert_eq!(run_once(&db, 1000).await.unwrap(), Vec::<String>::new());
        // Emptied (old shows' bookings trimmed): analyzed again, so a sale that fills it next
        // is measured from nothing.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE show_id = '{show}'"
        )))
        .execute(&db)
        .await
        .unwrap();
        assert_eq!(
            analyzed_soon(&db, "the emptied partition analyzed").await,
            vec![table.clone()]
        );
    }
}
