//! `GET /openapi.json`: the public API as OpenAPI 3.1, kept in `queue-gateway/openapi.json`
//! beside the code and checked by the test suite against the routes that exist.

use axum::response::IntoResponse;

pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn serve() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
