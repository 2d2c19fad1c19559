//! Errors as Docker's daemon sends them: an HTTP status and `{"message": "..."}`, with the
//! same words the `berth` command line prints for the same failure.

/// A failed request: its HTTP status and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(501, message)
    }

    /// The route is unknown: Docker's router answers 404 with this text.
    pub fn no_route() -> Self {
        Self::not_found("page not found")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> Self {
        use berth_engine::Error as E;
        let status = match &e {
            E::NoSuchContainer(_) | E::NoSuchExec(_) | E::NoSuchPath { .. } => 404,
            E::Invalid(m) if m.contains("already in use") => 409,
            E::Invalid(_) | E::Spec(_) => 400,
            E::State { .. } => 409,
            // The container's command cannot run: Docker's InvalidParameter.
            E::Command { .. } => 400,
            E::Image(i) => return image_error(i),
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> Self {
        image_error(&e)
    }
}

fn image_error(e: &berth_image::Error) -> ApiError {
    use berth_image::Error as E;
    let status = match e {
        E::NoSuchImage(_) => 404,
        E::Reference { .. } | E::Digest { .. } | E::Platform { .. } => 400,
        E::AmbiguousImage { .. } => 400,
        _ => 500,
    };
    ApiError::new(status, e.to_string())
}
