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
            E::NoSuchContainer(_)
            | E::NoSuchExec(_)
            | E::NoSuchPath { .. }
            | E::NoSuchVolume(_) => 404,
            E::Invalid(m) if m.contains("already in use") => 409,
            E::Invalid(_) | E::Spec(_) => 400,
            E::State { .. } | E::Conflict(_) => 409,
            E::Forbidden(_) => 403,
            // The container's command cannot run: Docker's InvalidParameter.
            E::Command { .. } => 400,
            E::Image(i) => return image_error(i),
            E::Net(n) => net_status(n),
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

/// As Docker's daemon answers: the image or the registry's object missing is 404 whatever
/// step it happened at. A registry refusing the credentials is a 500, as Docker's: a 401 has
/// the docker CLI prompt for a login, and wait on a closed stdin for good.
fn image_error(e: &berth_image::Error) -> ApiError {
    use berth_image::Error as E;
    let status = match e.root() {
        E::NoSuchImage(_) | E::NotFound { .. } => 404,
        E::Reference { .. } | E::Digest { .. } | E::Platform { .. } => 400,
        E::AmbiguousImage { .. } | E::NoMatchingPlatform { .. } => 400,
        _ => 500,
    };
    ApiError::new(status, e.to_string())
}

/// Docker's statuses for networks: a name taken is a conflict; a network in use, an
/// overlapping subnet or an address taken is forbidden (libnetwork's ForbiddenError).
fn net_status(e: &berth_net::NetError) -> u16 {
    use berth_net::NetError as N;
    match e {
        N::NotFound(_) => 404,
        N::Exists(_) => 409,
        N::InUse { .. } | N::Overlap { .. } | N::AddressInUse { .. } => 403,
        N::Invalid { .. } => 400,
        _ => 500,
    }
}
