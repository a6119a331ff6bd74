//! One rendering of engine errors for JSON APIs: `{code, message}` in English with the right
//! status. 5xx bodies are generic and carry an error id that is also in the log.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use protocol::ApiErrorBody;

use crate::domain::DomainError;
use crate::engine::EngineError;

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ApiErrorBody,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ApiErrorBody {
                code: code.to_owned(),
                message: message.into(),
                attempts_left: None,
                retry_after_secs: None,
            },
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "missing or invalid API key",
        )
    }
}

/// The one mapping from engine errors to HTTP statuses, for the APIs and the screens alike.
pub fn status_of(e: &EngineError) -> StatusCode {
    use EngineError as E;
    match e {
        E::Invalid { .. } | E::CodeFormat(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::Domain(
            DomainError::UnknownToken | DomainError::UnknownCustomer | DomainError::UnknownService,
        ) => StatusCode::NOT_FOUND,
        E::Domain(DomainError::Corrupt(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        E::Domain(_) => StatusCode::CONFLICT,
        E::Forbidden { .. } => StatusCode::FORBIDDEN,
        E::Stale | E::Conflict { .. } => StatusCode::CONFLICT,
        E::NotFound { .. } => StatusCode::NOT_FOUND,
        E::LinkNotOpened | E::AlreadyProvisioned | E::TokenNotUsable => StatusCode::CONFLICT,
        E::IssuanceExpired | E::IssuanceDead => StatusCode::GONE,
        E::WrongActivationPassword { .. } => StatusCode::UNAUTHORIZED,
        E::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = status_of(&e);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            let id = error_id();
            // The log gets the cause; the client gets only the id to quote.
            tracing::error!(error_id = %id, error = ?e, "internal error");
            return ApiError::new(status, "INTERNAL", format!("internal error (id {id})"));
        }
        let mut err = ApiError::new(status, e.code(), e.to_string());
        if let EngineError::WrongActivationPassword { attempts_left } = e {
            err.body.attempts_left = Some(attempts_left);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            err.retry_after = Some(1);
            err.body.retry_after_secs = Some(1);
        }
        err
    }
}

fn error_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED
            && res.headers().get(header::WWW_AUTHENTICATE).is_none()
        {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// `Json<T>` whose rejections are API errors with stable codes.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(match &rej {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "expected Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(_) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_JSON",
                    "the body is not valid JSON",
                ),
                // serde's message names the field and the problem, never echoes values.
                JsonRejection::JsonDataError(e) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_BODY",
                    format!(
                        "the body does not match the schema: {}",
                        data_error_text(&e.body_text())
                    ),
                ),
                JsonRejection::BytesRejection(_)
                    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "BODY_TOO_LARGE",
                        "the body is too large",
                    )
                }
                _ => ApiError::new(rej.status(), "BAD_REQUEST", "the body could not be read"),
            }),
        }
    }
}

/// serde's message for a data error, reduced to what cannot echo a submitted value: missing or
/// unknown field names are kept; for a wrong type or value only the field's path is kept
/// (serde would otherwise quote the value, which may be a password).
fn data_error_text(text: &str) -> String {
    let text = text
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim();
    if let Some(i) = text
        .find("missing field")
        .or_else(|| text.find("unknown field"))
    {
        let rest = &text[i..];
        let end = rest
            .find(", expected")
            .or_else(|| rest.find(" at line"))
            .unwrap_or(rest.len());
        return rest[..end].to_owned();
    }
    match text.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => format!("{path}: wrong type or value"),
        _ => "wrong type or value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::data_error_text;

    #[test]
    fn data_errors_never_echo_values() {
        let t = data_error_text("Failed to deserialize the JSON body into the target type: activation_password: invalid type: integer `98765432`, expected a string at line 1 column 30");
        assert_eq!(t, "activation_password: wrong type or value");
        assert_eq!(data_error_text("Failed to deserialize the JSON body into the target type: missing field `code` at line 1 column 2"), "missing field `code`");
        assert!(
            !data_error_text("invalid type: string \"hunter2\", expected u32").contains("hunter2")
        );
    }
}
