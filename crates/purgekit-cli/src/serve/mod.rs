//! `purgekit serve`: the purge service. An HTTP API (`api`) that validates purges as `purge`
//! does and queues them in the journal; workers (`worker`) in every instance take queued work
//! from the journal — one run's work on one provider account at a time — and run it with the
//! engine, rate limits shared through the journal.
//! Auth and per-token limits in `auth`, Prometheus metrics in `metrics`. docs/service.md.

mod api;
mod auth;
mod metrics;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use purgekit::journal::Journal;
use purgekit::registry::Drive;
use purgekit::sandbox::Sandbox;
use purgekit::{
    Config, EngineConfig, ProxyPolicy, Purger, RateRegistry, ReqwestTransport, Transport,
};
use tokio_util::sync::CancellationToken;

use crate::Failure;
use crate::args::{DEFAULT_WAIT_TIMEOUT, ServeArgs};
use crate::run::EXIT_OK;

/// What every request handler and worker of one instance shares.
pub struct App {
    journal: Journal,
    config: Config,
    drive: Drive,
    /// Purgers built so far, by the providers they run on.
    purgers: Mutex<HashMap<Vec<String>, Arc<dyn Purger>>>,
    auth: auth::Auth,
    metrics: metrics::Metrics,
    max_body: usize,
    /// With `--sandbox`: the emulators, serving while the service runs.
    _sandbox: Option<Sandbox>,
}

impl App {
    /// The purger over `providers` (all configured ones when empty), built once.
    fn purger(&self, providers: &[String]) -> purgekit::Result<Arc<dyn Purger>> {
        let mut purgers = self.purgers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(purger) = purgers.get(providers) {
            return Ok(purger.clone());
        }
        let purger = self.config.select(providers)?.build_with(&self.drive)?;
        purgers.insert(providers.to_vec(), purger.clone());
        Ok(purger)
    }
}

/// `serve`: listens on `args.listen` until SIGTERM or SIGINT, then stops leasing, lets the
/// requests in flight finish, gives the runs it holds back to the journal and exits 0.
pub async fn serve(
    args: &ServeArgs,
    config: Option<&Path>,
    proxy: Option<&ProxyPolicy>,
) -> Result<u8, Failure> {
    let (mut loaded, sandbox) = if args.sandbox {
        let sandbox = Sandbox::start()
            .await
            .map_err(|e| Failure::Failed(format!("cannot start the sandbox: {e}")))?;
        (sandbox.config().clone(), Some(sandbox))
    } else {
        (crate::setup::load(config)?, None)
    };
    if args.sandbox && Config::locate(config).exists() {
        // The sandbox's providers, the file's `[server]` settings (its tokens).
        loaded.server = crate::setup::load(config)?.server;
    }
    let server = loaded.server.clone();
    check_exposure(args.listen, server.tokens.is_empty())?;
    let journal = crate::journal::open(&args.journal, config).await?;
    let proxy = proxy
        .or(loaded.proxy.as_ref())
        .unwrap_or(&ProxyPolicy::Environment);
    let transport: Arc<dyn Transport> = Arc::new(ReqwestTransport::with_proxy(proxy)?);
    let drive = Drive {
        rates: Some(Arc::new(RateRegistry::with_store(Arc::new(
            journal.clone(),
        )))),
        engine: Some(EngineConfig {
            deadline: DEFAULT_WAIT_TIMEOUT,
            ..EngineConfig::default()
        }),
        transport: Some(transport),
    };
    let app = Arc::new(App {
        journal,
        config: loaded,
        drive,
        purgers: Mutex::new(HashMap::new()),
        auth: auth::Auth::new(&server.tokens, server.posts_per_minute),
        metrics: metrics::Metrics::new(),
        max_body: server.max_body_bytes,
        _sandbox: sandbox,
    });
    // Every provider's purger is built now, so a config error stops the start.
    app.purger(&[])?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Failed(format!("--listen {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::Failed(e.to_string()))?;
    // The address on stdout, for whoever started it (port 0 picks one).
    println!("purgekit: serving on http://{address}");
    tracing::info!(
        "serving on http://{address}, journal {}, {} workers",
        app.journal.location(),
        args.workers
    );
    let stop = CancellationToken::new();
    let workers = worker::start(app.clone(), usize::from(args.workers), stop.clone());
    let stopping = stop.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: no new leases; finishing the requests in flight");
        stopping.cancel();
    });
    let router = api::router(app.clone());
    let shutdown = stop.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|e| Failure::Failed(format!("serving: {e}")))?;
    for worker in workers {
        let _ = worker.await;
    }
    Ok(EXIT_OK)
}

/// Without tokens, the API is open: refused on any address but loopback.
fn check_exposure(listen: SocketAddr, open: bool) -> Result<(), Failure> {
    if open && !listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--listen {listen}: without API tokens ([server] tokens in the config) the service \
             listens on loopback only; configure tokens or listen on 127.0.0.1"
        )));
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_api_listens_on_loopback_only() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(check_exposure(at("127.0.0.1:8470"), true).is_ok());
        assert!(check_exposure(at("[::1]:8470"), true).is_ok());
        assert!(check_exposure(at("0.0.0.0:8470"), false).is_ok());
        let Err(Failure::Usage(message)) = check_exposure(at("0.0.0.0:8470"), true) else {
            panic!("an open API on 0.0.0.0 was allowed");
        };
        assert!(message.contains("loopback"), "{message}");
    }
}
