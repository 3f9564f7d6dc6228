//! What every emulator records of the requests it receives, the same way for all: a layer
//! around its routes, outside [`crate::Faults`], so faulted requests count too.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

/// One request an emulator received (faulted or not) and the status it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `POST`, `GET`…
    pub method: String,
    /// Path and query as received.
    pub path_and_query: String,
    /// The `Content-Length` header, if sent.
    pub content_length: Option<u64>,
    /// The status answered.
    pub status: u16,
}

/// The requests an emulator received, in order; cheap to clone, clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<SeenRequest>>>);

impl Seen {
    /// Every request received, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Axum middleware recording each request and its answer's status:
    /// `router.layer(axum::middleware::from_fn_with_state(seen, Seen::middleware))`.
    pub async fn middleware(State(seen): State<Seen>, request: Request, next: Next) -> Response {
        let method = request.method().to_string();
        let path_and_query = request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
        let content_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let response = next.run(request).await;
        seen.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(SeenRequest {
                method,
                path_and_query,
                content_length,
                status: response.status().as_u16(),
            });
        response
    }
}
