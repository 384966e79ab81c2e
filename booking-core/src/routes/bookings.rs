//! `POST /v1/bookings/reserve`, `GET` and `DELETE /v1/bookings/{id}`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use marquee_platform::Problem;
use marquee_waitroom::AdmissionClaims;
use marquee_waitroom::admission::check_event;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, bearer_or_cookie, idempotency_key};
use crate::holds::{self, Pick};
use crate::idempotency;
use crate::model::{Check, ReserveRequest, SeatStatus, plausible_id};
use crate::state::AppState;

use marquee_waitroom::admission::COOKIE as ADMISSION_COOKIE;

pub async fn reserve(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Body<Value>, Problem>,
) -> Response {
    // The credential first: a bad token is 401 whatever the body or the show.
    let claims = match authenticate(&state, &headers).await {
        Ok(claims) => claims,
        Err(e) => return e.into_response(),
    };
    let raw = match body {
        Ok(Body(raw)) => raw,
        Err(problem) => return problem.into_response(),
    };
    match prepare_reserve(&state, &headers, claims, &raw).await {
        Err(e) => e.into_response(),
        Ok(prepared) => {
            let key = prepared.key.as_deref().map(|k| idempotency::Key {
                scope: &prepared.visitor,
                route: "reserve",
                key: k,
                request_hash: idempotency::hash_request(&canonical(&raw)),
            });
            let work = async {
                let seatmap = state.seatmaps.latest(&prepared.show.id).await?;
                precheck(&prepared.pick, &seatmap)?;
                let view = holds::reserve(
                    &state.hold_batches,
                    &prepared.show,
                    &prepared.visitor,
                    &prepared.pick,
                    &seatmap,
                )
                .await?;
                state.recent_holds.remember(&view, prepared.show.partition);
                Ok((
                    StatusCode::CREATED,
                    serde_json::to_value(view).map_err(anyhow::Error::from)?,
                ))
            };
            idempotency::run(
                &state.db,
                key,
                state.settings.booking.idempotency_ttl_s,
                work,
            )
            .await
        }
    }
}

struct Prepared {
    show: holds::ShowInfo,
    visitor: String,
    pick: Pick,
    key: Option<String>,
}

/// The request without `request_id`, for the idempotency fingerprint (made only when the
/// request has a key).
fn canonical(raw: &Value) -> Value {
    let mut canonical = raw.clone();
    if let Some(obj) = canonical.as_object_mut() {
        obj.remove("request_id");
    }
    canonical
}

/// The admission token's claims, whatever event it is for (`prepare_reserve` checks that).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<AdmissionClaims> {
    let token = bearer_or_cookie(headers, ADMISSION_COOKIE)
        .ok_or_else(|| ApiError::Unauthorized("missing".into()))?;
    let visitor_key = headers.get("x-visitor-key").and_then(|v| v.to_str().ok());
    state
        .verifier
        .authenticate(&token, visitor_key)
        .await
        .map_err(|e| ApiError::Unauthorized(e.to_string()))
}

/// Validate, check the token is for the show's event, rate-limit: everything before anything
/// is held.
async fn prepare_reserve(
    state: &AppState,
    headers: &HeaderMap,
    claims: AdmissionClaims,
    raw: &Value,
) -> ApiResult<Prepared> {
    let req: ReserveRequest = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let text = e.inner().to_string();
        let field = if path != "." {
            path
        } else {
            // Missing and unknown fields are reported at the root; the message names them.
            text.split('`').nth(1).unwrap_or("body").to_owned()
        };
        ApiError::field(field, text)
    })?;
    let max = state.settings.booking.max_seats_per_booking;
    let mut check = Check::default();
    check.require(plausible_id(&req.show_id), "show_id", "must be a show id");
    let pick = match (&req.seat_ids, req.quantity) {
        (Some(ids), None) => {
            check.require(
                !ids.is_empty() && ids.len() <= max as usize,
                "seat_ids",
                &format!("must name 1 to {max} seats"),
            );
            for (i, id) in ids.iter().enumerate() {
                let plausible =
                    !id.is_empty() && id.len() <= 32 && !id.chars().any(char::is_control);
                let again = ids[..i].contains(id);
                // The field's name is made only for a seat that fails (a hold names 2–4).
                if !plausible || again {
                    let field = format!("seat_ids[{i}]");
                    check.require(plausible, &field, "must be a seat id");
                    check.require(!again, &field, "names a seat twice");
                }
            }
            check.require(
                req.category.is_none(),
                "category",
                "goes with quantity (best available), not seat_ids",
            );
            Pick::Seats(ids.clone())
        }
        (None, Some(q)) => {
            check.require(
                (1..=max).contains(&q),
                "quantity",
                &format!("must be between 1 and {max}"),
            );
            if let Some(c) = &req.category {
                check.require(
                    !c.is_empty() && c.chars().count() <= 40,
                    "category",
                    "must be a category name",
                );
            }
            Pick::Best {
                quantity: q,
                category: req.category.clone(),
            }
        }
        _ => {
            check.require(false, "seat_ids", "send either seat_ids or quantity");
            Pick::Best {
                quantity: 0,
                category: None,
            }
        }
    };
    let header_key = idempotency_key(headers)?;
    if let Some(body_key) = &req.request_id {
        check.require(
            !body_key.is_empty() && body_key.len() <= 255,
            "request_id",
            "must be 1 to 255 characters",
        );
        check.require(
            header_key.as_ref().is_none_or(|h| h == body_key),
            "request_id",
            "differs from the Idempotency-Key header",
        );
    }
    check.done()?;

    let show = state.shows.get(&state.db, &req.show_id).await?;
    if show.cancelled {
        return Err(ApiError::Conflict(
            "this show was cancelled; nothing more can be held".into(),
        ));
    }
    check_event(&claims, &show.event_id).map_err(|_| ApiError::Forbidden)?;
    state
        .reserve_gate
        .check(&show, &claims.sub, claims.exp)
        .await?;
    Ok(Prepared {
        show,
        visitor: claims.sub,
        pick,
        key: header_key.or(req.request_id),
    })
}

/// Unknown seats and categories are a 422; the cached map may answer 409 at once, but only
/// for seats it knows are sold (a held seat may lapse any moment, so only the lock decides
/// those).
fn precheck(pick: &Pick, map: &crate::seatmap::Snapshot) -> ApiResult<()> {
    let ids = match pick {
        Pick::Seats(ids) => ids,
        Pick::Best { category, .. } => {
            let mut check = Check::default();
            if let Some(c) = category {
                check.require(
                    map.has_category(c),
                    "category",
                    "no such category in this show",
                );
            }
            return Ok(check.done()?);
        }
    };
    let mut check = Check::default();
    for (i, id) in ids.iter().enumerate() {
        if !map.contains(id) {
            check.require(
                false,
                &format!("seat_ids[{i}]"),
                "no such seat in this show",
            );
        }
    }
    check.done()?;
    let sold: Vec<String> = ids
        .iter()
        .filter(|id| map.status_of(id) == Some(SeatStatus::Booked))
        .cloned()
        .collect();
    if sold.is_empty() {
        Ok(())
    } else {
        Err(ApiError::SeatsUnavailable(sold))
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<crate::model::BookingView>> {
    if !plausible_id(&id) {
        return Err(ApiError::NotFound("booking"));
    }
    Ok(axum::Json(
        crate::payments::routes::view_with_payment(&state, &id).await?,
    ))
}

/// `POST /v1/bookings/{id}/extend`: more time to pay, once (`holds::extend`).
pub async fn extend(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    if !plausible_id(&id) {
        return Err(ApiError::NotFound("booking"));
    }
    let extended = holds::extend(&state.db, &id).await?;
    let expires_at = extended.expires_at;
    tracing::info!(booking = %id, %expires_at, "hold extended");
    // The fan's slot is kept as the reserve gate keeps it: the hold's window plus the idle
    // time, never past the session's end. The hold stands whether or not Redis answers.
    let kept = marquee_waitroom::session::keep_for_hold(
        &mut state.redis.clone(),
        &extended.event_id,
        &extended.visitor_id,
        expires_at.timestamp_millis() + i64::from(extended.idle_after_s.max(0)) * 1000,
        i64::from(extended.session_ttl_s.max(0)) * 1000,
    )
    .await;
    if let Err(e) = kept {
        tracing::warn!(booking = %id, error = %e, "could not lengthen the fan's slot; it ends with the first window");
    }
    Ok(axum::Json(
        serde_json::json!({"reservation_id": id, "expires_at": expires_at}),
    ))
}

pub async fn release(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<crate::model::BookingView>> {
    if !plausible_id(&id) {
        return Err(ApiError::NotFound("booking"));
    }
    let view = holds::release(
        &state.hold_batches,
        &state.recent_holds,
        &state.shows,
        &state.redis,
        &id,
    )
    .await?;
    Ok(axum::Json(view))
}
