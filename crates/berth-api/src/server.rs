//! The service's loop: accept connections, serve each with hyper (HTTP/1.1 with upgrades, for
//! attach and exec), and stop on SIGTERM, SIGINT or after `--time` seconds without a client.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::handlers::State;
use crate::listen::{Conn, Endpoint, Listener, TlsFiles};

/// What `berth system service` asks for.
pub struct ServiceOptions {
    pub endpoint: Endpoint,
    pub tls: Option<TlsFiles>,
    /// Exit after this long without a connection; `None` serves until stopped.
    pub idle: Option<Duration>,
    pub engine: berth_engine::Engine,
    /// How to reach registries (plain HTTP, Hub mirrors), before a client's credentials.
    pub registry: berth_image::registry::RegistryOptions,
    /// The binary's build, for `GET /version`.
    pub build: berth_engine::version::Build,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Listen(String),
    #[error("start the service's threads: {0}")]
    Runtime(std::io::Error),
    #[error("install the service's signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Serves until stopped or idle. Returns once the listener is closed (the socket file removed).
pub fn serve(opts: ServiceOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-api")
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(opts))
}

async fn run(opts: ServiceOptions) -> Result<(), ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = Listener::bind(&opts.endpoint, opts.tls.as_ref())
        .await
        .map_err(ServeError::Listen)?;
    // The service outlives the monitors it starts: they must not be its children.
    let mut engine = opts.engine;
    engine.detach_monitors = true;
    let state = Arc::new(State {
        engine,
        registry: opts.registry,
        build: opts.build,
    });
    let activity = Arc::new(Activity::new());
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok(io) => serve_connection(io, Arc::clone(&state), Arc::clone(&activity)),
                // Out of descriptors, a failed TLS handshake...: that client only.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            () = activity.idle_for(opts.idle) => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    Ok(())
}

fn serve_connection(io: Box<dyn Conn>, state: Arc<State>, activity: Arc<Activity>) {
    activity.enter();
    tokio::spawn(async move {
        let service = service_fn(move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(crate::router::dispatch(state, request).await) }
        });
        // A client that goes away mid-request or mid-stream ends its connection, nothing more.
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
        activity.leave();
    });
}

/// How many connections are open, and since when none is.
struct Activity {
    open: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            open: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn enter(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
    }

    fn leave(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.open.fetch_sub(1, Ordering::SeqCst);
    }

    /// Resolves once no connection has been open for `idle` (never with `None`).
    async fn idle_for(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let since = *self.last.lock().unwrap_or_else(|e| e.into_inner());
            let left = idle.saturating_sub(since.elapsed());
            if self.open.load(Ordering::SeqCst) == 0 && left.is_zero() {
                return;
            }
            tokio::time::sleep(left.max(Duration::from_millis(100))).await;
        }
    }
}
