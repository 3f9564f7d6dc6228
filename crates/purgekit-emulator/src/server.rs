//! Binding an emulator to a loopback address, and stopping it.

use std::net::SocketAddr;

use axum::Router;

use crate::{Faults, Seen};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An emulator serving on a local address; stops when dropped or [`Running::stop`]ped.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the endpoint to configure a provider with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `router` on `addr` (use `127.0.0.1:0` for a free port).
pub async fn serve(router: Router, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!("emulator on {addr} stopped: {e}");
        }
    });
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// `routes` (their authentication applied) inside the layers every emulator shares: the fault
/// queue, then, outermost, the request log, so a faulted request is seen too.
pub(crate) fn observed(routes: Router, faults: Faults, seen: Seen) -> Router {
    routes
        .layer(axum::middleware::from_fn_with_state(
            faults,
            Faults::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(seen, Seen::middleware))
}
