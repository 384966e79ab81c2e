//! Stripe's list calls for the objects the simulator keeps: `GET /v1/payment_intents` and
//! `GET /v1/refunds` (optionally `?payment_intent=`), newest first, paged with `limit` (1 to
//! 100, default 10) and `starting_after`, narrowed by `created[gte]` (Unix seconds) as
//! Stripe's are, answering `{object: "list", data, has_more, url}` as Stripe does. An audit
//! reads every payment of its night back through them (only its night's: the simulator keeps
//! every object, and each page is sorted from the objects the call selects).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{Simulator, error, guard};

fn page(mut objects: Vec<&Value>, query: &HashMap<String, String>, url: &str) -> Response {
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
    objects.sort_by(|a, b| {
        (b["created"].as_i64(), b["id"].as_str()).cmp(&(a["created"].as_i64(), a["id"].as_str()))
    });
    let start = match query.get("starting_after") {
        None => 0,
        Some(after) => match objects.iter().position(|o| o["id"] == after.as_str()) {
            Some(i) => i + 1,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("No such object: '{after}'"),
                    Some("starting_after"),
                    Some("resource_missing"),
                );
            }
        },
    };
    let rest = objects.get(start..).unwrap_or_default();
    let data: Vec<&Value> = rest.iter().take(limit).copied().collect();
    axum::Json(json!({"object": "list", "url": url, "has_more": rest.len() > limit, "data": data}))
        .into_response()
}

/// A list call: authenticated as every API call is, then a page of `objects`.
async fn listing(
    sim: &Simulator,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    url: &str,
    objects: impl for<'s> FnOnce(&'s crate::Store) -> Vec<&'s Value>,
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
    match guard(sim, headers, "list").await {
        Err(r) | Ok(Some(r)) => r,
        Ok(None) => {
            let store = sim.store();
            let selected = objects(&store)
                .into_iter()
                .filter(|o| since.is_none_or(|t| o["created"].as_i64().is_some_and(|c| c >= t)))
                .collect();
            page(selected, query, url)
        }
    }
}

pub async fn payment_intents(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    listing(&sim, &headers, &query, "/v1/payment_intents", |store| {
        store.intents.values().collect()
    })
    .await
}

pub async fn refunds(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wanted = query.get("payment_intent").cloned();
    listing(&sim, &headers, &query, "/v1/refunds", |store| {
        store
            .refunds
            .values()
            .filter(|r| wanted.as_deref().is_none_or(|pi| r["payment_intent"] == pi))
            .collect()
    })
    .await
}
