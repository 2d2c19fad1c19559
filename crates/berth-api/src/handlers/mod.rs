//! The routes of Docker's Engine API and the handlers behind them. A handler parses the call,
//! calls berth-engine on a blocking thread (the engine is synchronous and may spawn monitors),
//! and serialises what it returns: no Docker behaviour lives here, only its JSON.
//!
//! Each module routes its own paths: its `route` answers the calls it knows (`Break`) and hands
//! the others back (`Continue`) to the next module in [`route`].

mod build;
mod containers;
mod df;
mod images;
mod networks;
mod streams;
mod system;
mod volumes;

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::error::ApiError;
use crate::respond::Reply;
use crate::router::Call;

/// A module's answer to a call: handled, or the call back for the next module.
pub type Routed = ControlFlow<Reply, Call>;

/// What every handler shares.
pub struct State {
    pub engine: berth_engine::Engine,
    /// How to reach registries (plain HTTP, Hub mirrors), before a client's credentials.
    pub registry: berth_image::registry::RegistryOptions,
    /// The binary's build, for `GET /version`.
    pub build: berth_engine::version::Build,
}

impl State {
    /// How to reach registries, with the client's credentials (`X-Registry-Auth`) if it sent any.
    pub fn registry(
        &self,
        credentials: Option<berth_image::registry::Credentials>,
    ) -> berth_image::registry::RegistryOptions {
        berth_image::registry::RegistryOptions {
            credentials,
            ..self.registry.clone()
        }
    }

    /// Runs `f` with the engine on a blocking thread.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&State) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ApiError::internal(format!("the request's thread failed: {e}")))?
    }
}

/// The handler for `call`'s route: each module in turn, then Docker's 404.
pub async fn route(state: Arc<State>, call: Call) -> Reply {
    macro_rules! try_module {
        ($module:ident, $call:expr) => {
            match $module::route(&state, $call).await {
                ControlFlow::Break(reply) => return reply,
                ControlFlow::Continue(call) => call,
            }
        };
    }
    let call = try_module!(system, call);
    let call = try_module!(containers, call);
    let call = try_module!(streams, call);
    let call = try_module!(images, call);
    let call = try_module!(build, call);
    let call = try_module!(networks, call);
    let call = try_module!(volumes, call);
    let call = try_module!(df, call);
    let _ = call;
    Err(ApiError::no_route())
}
