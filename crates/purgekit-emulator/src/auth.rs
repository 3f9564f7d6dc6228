//! Authentication as one layer, applied the same way around every emulator's routes, inside
//! [`crate::Faults`] and [`crate::Seen`]: each emulator's `<kind>/auth.rs` implements
//! [`Authenticator`] with its own implementation of the vendor's scheme and renders the vendor's
//! documented refusal; [`authenticate`] reads the body (bounded), verifies, and either answers
//! the refusal or hands the request on with its [`Principal`] in the extensions. Handlers never
//! check credentials.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who a verified request is from, as the vendor names it (a key id, a user, an access key
/// id): in the request's extensions for the handler (`Extension<Principal>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal(pub(crate) String);

/// An emulator's credential check and its vendor's answer to a refused request.
pub(crate) trait Authenticator: Clone + Send + Sync + 'static {
    /// Why a request was refused, as the emulator renders it.
    type Refusal;

    /// The largest body read to verify a request (axum's default body limit, 2 MiB, unless the
    /// emulator documents another); a longer one is answered [`Authenticator::too_large`].
    const MAX_BODY: usize = 2 * 1024 * 1024;

    /// Verifies the request's credentials (signature, keys, timestamps, replay) over its head
    /// and whole body.
    fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, Self::Refusal>;

    /// The vendor's documented answer to a refusal (its 401/403 and error body).
    fn refuse(&self, refusal: Self::Refusal) -> Response;

    /// The answer to a body over [`Authenticator::MAX_BODY`] (or one that breaks off): 413.
    fn too_large(&self) -> Response {
        StatusCode::PAYLOAD_TOO_LARGE.into_response()
    }
}

/// Axum middleware applying `auth`:
/// `router.route_layer(axum::middleware::from_fn_with_state(auth, authenticate::<A>))`
/// (`route_layer`: an unknown path is the vendor's 404, signed or not; `layer` where every path
/// is the emulator's own).
pub(crate) async fn authenticate<A: Authenticator>(
    State(auth): State<A>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, A::MAX_BODY).await else {
        return auth.too_large();
    };
    match auth.verify(&parts, &body) {
        Ok(principal) => {
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(refusal) => auth.refuse(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::Extension;
    use axum::routing::post;

    /// Accepts requests whose body starts with the token; at most 8 body bytes.
    #[derive(Clone)]
    struct Token;

    impl Authenticator for Token {
        type Refusal = &'static str;
        const MAX_BODY: usize = 8;

        fn verify(&self, parts: &Parts, body: &[u8]) -> Result<Principal, &'static str> {
            let user = parts.headers.get("user").ok_or("no user")?;
            if body.starts_with(b"token") {
                Ok(Principal(user.to_str().unwrap_or_default().to_owned()))
            } else {
                Err("bad token")
            }
        }

        fn refuse(&self, why: &'static str) -> Response {
            (StatusCode::UNAUTHORIZED, why).into_response()
        }
    }

    async fn call(body: &'static str, user: Option<&str>) -> (StatusCode, String) {
        let router = Router::new()
            .route(
                "/",
                post(
                    |Extension(who): Extension<Principal>, body: String| async move {
                        format!("{} sent {body}", who.0)
                    },
                ),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                Token,
                authenticate::<Token>,
            ));
        let running = crate::serve(router, ([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let mut request = reqwest::Client::new().post(running.url()).body(body);
        if let Some(user) = user {
            request = request.header("user", user);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        running.stop().await;
        (StatusCode::from_u16(status).unwrap(), text)
    }

    #[tokio::test]
    async fn refusals_never_reach_the_handler_and_the_principal_and_body_do() {
        assert_eq!(
            call("token!", Some("ann")).await,
            (StatusCode::OK, "ann sent token!".to_owned())
        );
        assert_eq!(
            call("guess", Some("ann")).await,
            (StatusCode::UNAUTHORIZED, "bad token".to_owned())
        );
        assert_eq!(
            call("token", None).await,
            (StatusCode::UNAUTHORIZED, "no user".to_owned())
        );
        let (status, _) = call("token and more", Some("ann")).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
