//! Stripe's list calls for the objects the simulator keeps: `GET /v1/payment_intents` and
//! `GET /v1/refunds` (optionally `?payment_intent=`), newest first, paged with `limit` (1 to
//! 100, default 10) and `starting_after`, narrowed by `created[gte]` (Unix seconds) as
//! Stripe's are, answering `{object: "list", data, has_more, url}` as Stripe does. An audit
//! reads every payment of its night back through them (only its night's: the simulator keeps
//! every object, and each page is read off an index in creation order, not sorted from all
//! of them).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Simulator, error, guard};

/// Objects of one kind, by id and in the order they were made, so that a list call reads a
/// range of them (the newest first, from `created[gte]` on, after `starting_after`) rather
/// than sorting all it has kept: the store is behind one lock, and a soak's audits page
/// through a night's payments while a hundred thousand earlier ones are kept.
#[derive(Default)]
pub struct Listed {
    by_id: HashMap<String, Value>,
    /// `(created, id)` of every object: ascending, so newest first is its reverse, ties
    /// broken by id as the list calls always have.
    by_created: BTreeSet<(i64, String)>,
}

impl Listed {
    /// Keep `object` (its `id` and `created` are read from it; one with the same id is replaced).
    pub fn insert(&mut self, object: Value) {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        let made = created(&object);
        if let Some(old) = self.by_id.insert(id.clone(), object) {
            self.by_created.remove(&(created(&old), id.clone()));
        }
        self.by_created.insert((made, id));
    }

    pub fn get(&self, id: &str) -> Option<&Value> {
        self.by_id.get(id)
    }

    /// For changes other than to `id` and `created` (the order is kept by them).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.by_id.get_mut(id)
    }

    /// Newest first: those made at or after `since`, older than the object `after` (`None`
    /// when there is no such object).
    fn newest(
        &self,
        since: Option<i64>,
        after: Option<&str>,
    ) -> Option<impl Iterator<Item = &Value>> {
        let upper = match after {
            None => Bound::Unbounded,
            Some(id) => Bound::Excluded((created(self.by_id.get(id)?), id.to_owned())),
        };
        Some(
            self.by_created
                .range((Bound::Unbounded, upper))
                .rev()
                .take_while(move |(c, _)| since.is_none_or(|t| *c >= t))
                .filter_map(|(_, id)| self.by_id.get(id)),
        )
    }
}

fn created(object: &Value) -> i64 {
    object["created"].as_i64().unwrap_or(0)
}

/// A list call: authenticated as every API call is, then a page of `listed`'s objects that
/// `keep` accepts, `{object: "list", data, has_more, url}` as Stripe answers.
async fn listing(
    sim: &Simulator,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    url: &str,
    listed: impl for<'s> FnOnce(&'s crate::Store) -> &'s Listed,
    keep: impl Fn(&Value) -> bool,
) -> Response {
    let since = match query.get("created[gte]").map(|t| t.parse::<i64>()) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Invalid integer: created[gte] must be a Unix timestamp.",
                Some("created[gte]"),
                None,
            );
        }
    };
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Invalid integer: limit must be between 1 and 100.",
                Some("limit"),
                None,
            );
        }
    };
    match guard(sim, headers, "list").await {
        Err(r) | Ok(Some(r)) => r,
        Ok(None) => {
            let store = sim.store();
            let after = query.get("starting_after");
            let Some(newest) = listed(&store).newest(since, after.map(String::as_str)) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such object: '{}'", after.map_or("", |a| a.as_str())),
                    Some("starting_after"),
                    Some("resource_missing"),
                );
            };
            // One more than the page, to tell whether there are more.
            let mut data: Vec<&Value> = newest.filter(|o| keep(o)).take(limit + 1).collect();
            let has_more = data.len() > limit;
            data.truncate(limit);
            axum::Json(json!({"object": "list", "url": url, "has_more": has_more, "data": data}))
                .into_response()
        }
    }
}

pub async fn payment_intents(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    listing(
        &sim,
        &headers,
        &query,
        "/v1/payment_intents",
        |store| &store.intents,
        |_| true,
    )
    .await
}

pub async fn refunds(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wanted = query.get("payment_intent").cloned();
    listing(
        &sim,
        &headers,
        &query,
        "/v1/refunds",
        |store| &store.refunds,
        |r| wanted.as_deref().is_none_or(|pi| r["payment_intent"] == pi),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(listed: &Listed, since: Option<i64>, after: Option<&str>) -> Option<Vec<String>> {
        let newest = listed.newest(since, after)?;
        Some(
            newest
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect(),
        )
    }

    #[test]
    fn newest_first_from_a_time_on_after_a_cursor_ties_by_id() {
        let mut listed = Listed::default();
        for (id, created) in [("b", 10), ("a", 10), ("c", 20), ("d", 30), ("e", 20)] {
            listed.insert(json!({"id": id, "created": created}));
        }
        let all = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ids(&listed, None, None), all(&["d", "e", "c", "b", "a"]));
        assert_eq!(ids(&listed, Some(20), None), all(&["d", "e", "c"]));
        assert_eq!(ids(&listed, None, Some("e")), all(&["c", "b", "a"]));
        assert_eq!(ids(&listed, Some(20), Some("c")), all(&[]));
        assert_eq!(ids(&listed, Some(11), Some("b")), all(&[]));
        assert_eq!(ids(&listed, None, Some("nope")), None);
        // Replacing an object keeps one entry, in its new place.
        listed.insert(json!({"id": "a", "created": 40}));
        assert_eq!(ids(&listed, None, None), all(&["a", "d", "e", "c", "b"]));
    }
}
