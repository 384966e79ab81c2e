//! `GET /v1/shows/{id}/seats` (cached, ETag) and its server-sent-event stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::{ApiError, ApiResult};
use crate::model::plausible_id;
use crate::state::AppState;

pub async fn seat_map(
    State(state): State<AppState>,
    Path(show_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !plausible_id(&show_id) {
        return Err(ApiError::NotFound("show"));
    }
    let snap = state.seatmaps.get(&show_id).await?;
    let etag = HeaderValue::from_str(&snap.etag).map_err(anyhow::Error::from)?;
    let cache = HeaderValue::from_static("public, max-age=1");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == snap.etag)
        });
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        snap.body.clone(),
    )
        .into_response())
}

/// Server-sent events: first a `snapshot` with the whole map, then `seats` events naming the
/// seats whose status changed.
pub async fn seat_events(
    State(state): State<AppState>,
    Path(show_id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    if !plausible_id(&show_id) {
        return Err(ApiError::NotFound("show"));
    }
    let snap = state.seatmaps.get(&show_id).await?;
    let rx = state.seatmaps.subscribe(&show_id);
    let first = Event::default()
        .event("snapshot")
        .data(String::from_utf8_lossy(&snap.body));
    let updates = BroadcastStream::new(rx).filter_map(|msg| {
        msg.ok()
            .map(|m: Arc<str>| Ok(Event::default().event("seats").data(&*m)))
    });
    let stream = tokio_stream::once(Ok(first)).chain(updates);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
