//! 取引認証 (transaction authentication) in the app: the code for a transfer the customer typed
//! off the bank's confirmation screen, or scanned from its QR. The core computes the OCRA
//! response; these commands parse what was typed or scanned and copy the transfer and its code
//! into a view for the screen.

use app::{AppError, ClockWarning};
use serde::Serialize;
use tauri::State;

use super::Shell;
use crate::error::ShellError;

/// One frame of the 取引認証 screen: the transfer the code is for (for the customer to check
/// against what they meant) and its 8-digit code. The amount is digits (the UI groups them).
/// No `Debug`: it holds a code.
#[derive(Serialize)]
pub struct TransactionFrame {
    bank_code: String,
    branch_code: String,
    /// `1` 普通, `2` 当座.
    account_type: char,
    account_number: String,
    amount: u64,
    code: String,
    seconds_left: u32,
    period: u32,
    clock_warning: Option<ClockWarning>,
    /// The device second the frame was made at (Unix seconds): the page counts on from it.
    at_secs: u64,
}

/// What a scanned 取引認証 QR holds: which token, and the transfer (the payee name is shown,
/// not signed).
#[derive(Debug, Serialize)]
pub struct ScannedTransaction {
    id: String,
    bank_code: String,
    branch_code: String,
    account_type: char,
    account_number: String,
    amount: u64,
    payee_name: String,
}

/// Half-width digits of what the customer typed (full-width digits become half-width, spaces
/// and hyphens and grouping commas go); anything else is left for the protocol to refuse.
fn typed_digits(s: &str) -> String {
    protocol::ids::half_width_digits(s)
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{3000}' | '-' | ',' | '\u{FF0C}'))
        .collect()
}

/// The transfer the customer typed (typed fallback), checked field by field.
fn typed_transaction(
    bank_code: &str,
    branch_code: &str,
    account_type: &str,
    account_number: &str,
    amount: &str,
) -> Result<protocol::ocra::Transaction, AppError> {
    use protocol::ocra::{AccountType, OcraError, Transaction};
    let kind = match account_type {
        "1" => AccountType::Ordinary,
        "2" => AccountType::Current,
        _ => return Err(OcraError::AccountType.into()),
    };
    let amount = typed_digits(amount);
    let amount: u64 = if amount.bytes().all(|b| b.is_ascii_digit()) {
        amount.parse().map_err(|_| OcraError::Amount)?
    } else {
        return Err(OcraError::Amount.into());
    };
    Ok(Transaction::new(
        &typed_digits(bank_code),
        &typed_digits(branch_code),
        kind,
        &typed_digits(account_number),
        amount,
    )?)
}

fn transaction_frame_of(view: app::TransactionView, at_secs: u64) -> TransactionFrame {
    let t = &view.transaction;
    TransactionFrame {
        bank_code: t.bank_code().to_owned(),
        branch_code: t.branch_code().to_owned(),
        account_type: t.account_type().code(),
        account_number: t.account_number().to_owned(),
        amount: t.amount_yen(),
        code: view.code.as_str().to_owned(),
        seconds_left: view.seconds_left,
        period: view.period,
        clock_warning: view.clock_warning,
        at_secs,
    }
}

/// 取引認証, typed fallback: the code for the transfer the customer typed off the bank's
/// confirmation screen.
#[tauri::command]
pub async fn transaction_frame(
    shell: State<'_, Shell>,
    id: String,
    bank_code: String,
    branch_code: String,
    account_type: String,
    account_number: String,
    amount: String,
) -> Result<TransactionFrame, ShellError> {
    shell.ensure_unlocked()?;
    let transaction = typed_transaction(
        &bank_code,
        &branch_code,
        &account_type,
        &account_number,
        &amount,
    )?;
    let now = app::codes::device_now();
    let view = shell
        .vault()
        .await?
        .transaction_view(&id, transaction, now)?;
    Ok(transaction_frame_of(view, now))
}

/// 取引認証, QR: what a scanned challenge holds and which of this phone's tokens it is for. The
/// UI shows it, then asks [`transaction_frame`] for the code with the same fields.
#[tauri::command]
pub async fn scan_transaction(
    shell: State<'_, Shell>,
    text: String,
) -> Result<ScannedTransaction, ShellError> {
    shell.ensure_unlocked()?;
    let challenge =
        protocol::ocra::TransactionChallenge::parse(text.trim()).map_err(AppError::from)?;
    let vault = shell.vault().await?;
    let token = vault.challenge_token(&challenge)?;
    let t = &challenge.transaction;
    Ok(ScannedTransaction {
        id: token.id.clone(),
        bank_code: t.bank_code().to_owned(),
        branch_code: t.branch_code().to_owned(),
        account_type: t.account_type().code(),
        account_number: t.account_number().to_owned(),
        amount: t.amount_yen(),
        payee_name: challenge.payee_name.clone(),
    })
}
