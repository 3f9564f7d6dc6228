//! Faults injected on demand into an emulator's next responses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One injected fault, applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then answer normally.
    Latency(Duration),
    /// Answer with this status, the given headers and an empty body, without handling the request.
    Status {
        /// The status code (e.g. 503).
        status: u16,
        /// Extra headers (e.g. `Retry-After`).
        headers: Vec<(String, String)>,
    },
    /// Send the status line and headers, then drop the connection mid-body.
    DropConnection,
    /// Handle the request as usual (its effects happen), then drop the connection instead of
    /// sending the answer: a response lost on the way back.
    DropResponse,
    /// Answer 200 with a body no client can parse.
    Malformed,
}

impl Fault {
    /// A bare status fault, e.g. `Fault::status(502)`.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            headers: Vec::new(),
        }
    }
}

/// A queue of faults shared by an emulator and the test that drives it. Each request takes the
/// next fault, if any; [`Faults::always`] makes one fault apply to every request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultQueue>>,
}

#[derive(Debug, Default)]
struct FaultQueue {
    next: VecDeque<Fault>,
    always: Option<Fault>,
    injected: usize,
}

impl Faults {
    /// Applies `fault` to the next request not already given one.
    pub fn push(&self, fault: Fault) {
        self.lock().next.push_back(fault);
    }

    /// Applies `fault` to every request until [`Faults::clear`].
    pub fn always(&self, fault: Fault) {
        self.lock().always = Some(fault);
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        let mut q = self.lock();
        q.next.clear();
        q.always = None;
    }

    /// How many faults have been injected so far.
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    fn take(&self) -> Option<Fault> {
        let mut q = self.lock();
        let fault = q.next.pop_front().or_else(|| q.always.clone());
        if fault.is_some() {
            q.injected += 1;
        }
        fault
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultQueue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Axum middleware applying the queue: `router.layer(axum::middleware::from_fn_with_state(faults, Faults::middleware))`.
    pub async fn middleware(
        State(faults): State<Faults>,
        request: Request,
        next: Next,
    ) -> Response {
        match faults.take() {
            None => next.run(request).await,
            Some(Fault::Latency(delay)) => {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }
            Some(Fault::Status { status, headers }) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = status.into_response();
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (
                        axum::http::HeaderName::try_from(name),
                        axum::http::HeaderValue::try_from(value),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
            Some(Fault::DropResponse) => {
                let handled = next.run(request).await;
                drop(handled);
                broken_response()
            }
            Some(Fault::DropConnection) => broken_response(),
            Some(Fault::Malformed) => (StatusCode::OK, "<<not a valid {response").into_response(),
        }
    }
}

/// A response whose body breaks off at once.
fn broken_response() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-length", "1000")
        .body(Body::from_stream(futures_once_error()))
        .expect("a static response builds")
}

/// A body stream that fails at once, so hyper aborts the connection mid-response.
fn futures_once_error() -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    struct Broken(bool);
    impl futures_core::Stream for Broken {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 {
                return std::task::Poll::Ready(None);
            }
            self.0 = true;
            std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "emulated dropped connection",
            ))))
        }
    }
    Broken(false)
}
