//! The routes of Docker's Engine API and the handlers behind them. A handler parses the call,
//! calls berth-engine on a blocking thread (the engine is synchronous and may spawn monitors),
//! and serialises what it returns: no Docker behaviour lives here, only its JSON.

mod system;

use std::sync::Arc;

use crate::error::ApiError;
use crate::respond::Reply;
use crate::router::Call;

/// What every handler shares.
pub struct State {
    pub engine: berth_engine::Engine,
}

impl State {
    /// Runs `f` with the engine on a blocking thread.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&berth_engine::Engine) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&state.engine))
            .await
            .map_err(|e| ApiError::internal(format!("the request's thread failed: {e}")))?
    }
}

/// The handler for `call`'s route.
pub async fn route(state: Arc<State>, call: Call) -> Reply {
    let segs: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match (call.method.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => system::ping(&call),
        ("GET", ["version"]) => system::version(),
        _ => Err(ApiError::no_route()),
    }
}
