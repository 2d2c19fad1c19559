//! Response bodies: whole (JSON, text, empty) or streamed from a channel (logs, events, pull
//! progress), and the headers every answer of Docker's daemon carries.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame};
use hyper::Response;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// The body of every answer.
pub type Body = BoxBody<Bytes, Infallible>;

/// What a handler answers.
pub type Reply = Result<Response<Body>, ApiError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response with Docker's common headers.
pub fn builder(status: u16) -> hyper::http::response::Builder {
    Response::builder()
        .status(status)
        .header(
            "Server",
            concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)"),
        )
        .header("Api-Version", crate::version::MAX.to_string())
        .header("Docker-Experimental", "false")
        .header("Ostype", "linux")
}

/// `value` as JSON with `status`.
pub fn json(status: u16, value: &impl serde::Serialize) -> Reply {
    let bytes = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(builder(status)
        .header("Content-Type", "application/json")
        .body(full(bytes))
        .expect("static headers are valid"))
}

/// A status with no body (204 No Content, 304 Not Modified...).
pub fn status(status: u16) -> Reply {
    Ok(builder(status)
        .body(empty())
        .expect("static headers are valid"))
}

/// The error as Docker sends it.
pub fn error(e: &ApiError) -> Response<Body> {
    let body = serde_json::json!({ "message": e.message });
    builder(e.status)
        .header("Content-Type", "application/json")
        .body(full(body.to_string()))
        .expect("static headers are valid")
}

/// A body fed by a channel: each message is a chunk sent as soon as it comes; the body ends
/// when every sender is gone. The producer (a blocking thread following a log or the event
/// file) sees its sends fail once the client went away, and stops.
pub struct Streamed {
    rx: mpsc::Receiver<Bytes>,
}

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A streamed body and the sender that feeds it (bounded: a slow client slows the producer,
/// never the server's memory).
pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(64);
    (tx, Streamed { rx }.boxed())
}
