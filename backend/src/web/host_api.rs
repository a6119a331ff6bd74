//! The host API: JSON over HTTP for the bank's internet-banking host, behind bearer API keys.
//! Its OpenAPI document is `openapi.json` beside this crate, served at `/host/v1/openapi.json`.

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use protocol::Sensitive;

use super::error::{ApiError, ApiJson};
use super::{AppState, ClientIp, HostKey};
use crate::domain::Purpose;
use crate::engine::{Actor, EngineError, Issued, TokenStatus, VerifyReport};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Where the API lives.
pub const BASE: &str = "/host/v1";

/// Routes, under [`BASE`]. Registered with their full paths rather than nested under it: a
/// nested router rewrites every request's URI to strip the prefix (an allocation and a copy
/// per verification, issue 15).
pub fn router(state: AppState) -> Router<AppState> {
    let at = |path: &str| format!("{BASE}{path}");
    let authed = Router::new()
        .route(&at("/customers"), post(create_customer))
        .route(&at("/customers/{login_id}/tokens"), post(issue_token))
        .route(&at("/tokens/{user_id}"), get(token_status))
        .route(&at("/tokens/{user_id}/verify"), post(verify))
        .route(&at("/tokens/{user_id}/activate"), post(activate))
        .route(&at("/tokens/{user_id}/deactivate"), post(deactivate))
        .route(&at("/tokens/{user_id}/unlock"), post(unlock))
        .route_layer(middleware::from_fn_with_state(state, require_key));
    Router::new()
        .merge(authed)
        .route(&at("/openapi.json"), get(openapi))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The authenticated host, for the audit trail.
#[derive(Clone, Debug)]
struct HostName(String);

async fn require_key(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| HostKey::new("", k.trim()));
    let Some(presented) = presented else {
        return Err(ApiError::unauthenticated());
    };
    // Compare against every key so timing does not tell which (or whether one) matched.
    let mut found: Option<String> = None;
    for key in st.host_keys.iter() {
        if bool::from(key.digest_eq(&presented)) {
            found = Some(key.name.clone());
        }
    }
    let name = found.ok_or_else(ApiError::unauthenticated)?;
    req.extensions_mut().insert(HostName(name));
    Ok(next.run(req).await)
}

impl HostKey {
    fn digest_eq(&self, other: &HostKey) -> subtle::Choice {
        self.digest.ct_eq(&other.digest)
    }
}

fn actor(host: &HostName, ip: ClientIp) -> Actor {
    Actor::new(format!("host:{}", host.0), ip.0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCustomer {
    login_id: String,
    #[serde(default)]
    name: String,
    email: Option<String>,
    login_password: Sensitive<String>,
    confirmation_password: Sensitive<String>,
}

#[derive(Serialize)]
struct CustomerCreated {
    customer_id: i64,
    login_id: String,
}

fn z(s: &Sensitive<String>) -> Zeroizing<String> {
    Zeroizing::new(s.expose().clone())
}

/// A field of digits only (codes, activation passwords): full-width digits count as digits.
fn digits(s: &Sensitive<String>) -> Zeroizing<String> {
    Zeroizing::new(crate::domain::fields::half_width_digits(s.expose()))
}

async fn create_customer(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> Result<(StatusCode, Json<CustomerCreated>), ApiError> {
    let id = st
        .engine
        .create_customer(
            &body.login_id,
            &body.name,
            body.email.as_deref(),
            z(&body.login_password),
            z(&body.confirmation_password),
            &actor(&host, ip),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CustomerCreated {
            customer_id: id,
            login_id: body.login_id,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    email: String,
    activation_password: Sensitive<String>,
}

async fn issue_token(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    Path(login_id): Path<String>,
    ApiJson(body): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<Issued>), ApiError> {
    let issued = st
        .engine
        .issue_token(
            &login_id,
            &body.email,
            digits(&body.activation_password),
            &actor(&host, ip),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn token_status(
    State(st): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<TokenStatus>, ApiError> {
    Ok(Json(st.engine.token_status(&user_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    code: Sensitive<String>,
    purpose: Purpose,
    /// With purpose `transaction` only: the transfer as the bank received it.
    #[serde(default)]
    transaction: Option<TransactionBody>,
}

/// A transfer's payee account and amount, for a transaction code (取引認証, issue 16).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionBody {
    bank_code: String,
    branch_code: String,
    /// `"1"` 普通 (ordinary) or `"2"` 当座 (current), the Zengin codes.
    account_type: String,
    account_number: String,
    amount: u64,
}

impl TransactionBody {
    fn parse(&self) -> Result<protocol::ocra::Transaction, EngineError> {
        let invalid = |field: &'static str, e: protocol::ocra::OcraError| EngineError::Invalid {
            field,
            code: "TRANSACTION_FORMAT",
            message: e.to_string(),
        };
        let kind = match self.account_type.as_str() {
            "1" => protocol::ocra::AccountType::Ordinary,
            "2" => protocol::ocra::AccountType::Current,
            _ => {
                return Err(invalid(
                    "transaction.account_type",
                    protocol::ocra::OcraError::AccountType,
                ))
            }
        };
        protocol::ocra::Transaction::new(
            &self.bank_code,
            &self.branch_code,
            kind,
            &self.account_number,
            self.amount,
        )
        .map_err(|e| {
            let field = match e {
                protocol::ocra::OcraError::BankCode => "transaction.bank_code",
                protocol::ocra::OcraError::BranchCode => "transaction.branch_code",
                protocol::ocra::OcraError::AccountNumber => "transaction.account_number",
                _ => "transaction.amount",
            };
            invalid(field, e)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: Sensitive<String>,
}

async fn run_verify(
    st: &AppState,
    user_id: &str,
    code: &Sensitive<String>,
    purpose: Purpose,
    actor: Actor,
) -> Result<Json<VerifyReport>, ApiError> {
    Ok(Json(
        st.engine
            .verify(user_id, digits(code), purpose, actor)
            .await?,
    ))
}

async fn verify(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<VerifyReport>, ApiError> {
    match (body.purpose, &body.transaction) {
        (Purpose::Transaction, Some(tx)) => Ok(Json(
            st.engine
                .verify_transaction(&user_id, digits(&body.code), tx.parse()?, actor(&host, ip))
                .await?,
        )),
        (Purpose::Transaction, None) => Err(EngineError::Invalid {
            field: "transaction",
            code: "TRANSACTION_REQUIRED",
            message: "purpose transaction needs the transaction (payee account and amount)".into(),
        }
        .into()),
        (_, Some(_)) => Err(EngineError::Invalid {
            field: "transaction",
            code: "TRANSACTION_UNEXPECTED",
            message: "a transaction is given only with purpose transaction".into(),
        }
        .into()),
        (purpose, None) => run_verify(&st, &user_id, &body.code, purpose, actor(&host, ip)).await,
    }
}

async fn activate(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<VerifyReport>, ApiError> {
    run_verify(
        &st,
        &user_id,
        &body.code,
        Purpose::Activation,
        actor(&host, ip),
    )
    .await
}

async fn deactivate(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<VerifyReport>, ApiError> {
    run_verify(
        &st,
        &user_id,
        &body.code,
        Purpose::Deactivation,
        actor(&host, ip),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    reason: String,
}

async fn unlock(
    State(st): State<AppState>,
    Extension(host): Extension<HostName>,
    ip: ClientIp,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<Json<TokenStatus>, ApiError> {
    Ok(Json(
        st.engine
            .unlock(&user_id, &actor(&host, ip), &body.reason)
            .await?,
    ))
}
