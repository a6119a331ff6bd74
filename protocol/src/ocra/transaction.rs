//! Transaction authentication (取引認証) on OCRA: what a code commits to ([`Transaction`]),
//! the derived key and the fixed suite, making and checking a code (see the module doc of
//! [`crate::ocra`] for why it is built this way).

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    ocra, OcraError, OcraInput, OcraSuite, QuestionFormat, MAX_AMOUNT_YEN, TRANSACTION_KEY_INFO,
    TRANSACTION_STEP_SECS, TRANSACTION_SUITE,
};
use crate::secret::Secret;
use crate::totp::{match_candidates, Algorithm, Code, StepMatch};

/// 預金種目: the account type, with its Zengin code digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountType {
    /// 普通 (ordinary deposit), code 1.
    Ordinary,
    /// 当座 (current account), code 2.
    Current,
}

impl AccountType {
    /// The Zengin code digit: `'1'` or `'2'`.
    pub fn code(&self) -> char {
        match self {
            AccountType::Ordinary => '1',
            AccountType::Current => '2',
        }
    }

    /// The Japanese label the customer sees: `普通` / `当座`.
    pub fn label_ja(&self) -> &'static str {
        match self {
            AccountType::Ordinary => "普通",
            AccountType::Current => "当座",
        }
    }

    /// Parses the Zengin code digit.
    ///
    /// # Errors
    ///
    /// [`OcraError::AccountType`] for anything but `'1'` or `'2'`.
    pub fn from_code(c: char) -> Result<AccountType, OcraError> {
        match c {
            '1' => Ok(AccountType::Ordinary),
            '2' => Ok(AccountType::Current),
            _ => Err(OcraError::AccountType),
        }
    }
}

/// What a transaction code commits to: the payee account and the amount.
///
/// Invariants: bank code 4 digits, branch code 3 digits, account number 7 digits, amount
/// 1..=[`MAX_AMOUNT_YEN`]. The payee name is deliberately not here (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    bank_code: String,
    branch_code: String,
    account_type: AccountType,
    account_number: String,
    amount_yen: u64,
}

fn digits_exact(s: &str, len: usize, err: OcraError) -> Result<String, OcraError> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(err)
    }
}

impl Transaction {
    /// Builds a transaction from its fields (the typed fallback and the backend both use this).
    ///
    /// Strict: no spaces, no full-width digits; the UI normalises what the customer typed.
    ///
    /// # Errors
    ///
    /// [`OcraError::BankCode`], [`OcraError::BranchCode`], [`OcraError::AccountNumber`] or
    /// [`OcraError::Amount`] for the first field that breaks its rule.
    pub fn new(
        bank_code: &str,
        branch_code: &str,
        account_type: AccountType,
        account_number: &str,
        amount_yen: u64,
    ) -> Result<Transaction, OcraError> {
        let bank_code = digits_exact(bank_code, 4, OcraError::BankCode)?;
        let branch_code = digits_exact(branch_code, 3, OcraError::BranchCode)?;
        let account_number = digits_exact(account_number, 7, OcraError::AccountNumber)?;
        if !(1..=MAX_AMOUNT_YEN).contains(&amount_yen) {
            return Err(OcraError::Amount);
        }
        Ok(Transaction {
            bank_code,
            branch_code,
            account_type,
            account_number,
            amount_yen,
        })
    }

    /// Parses the 27-digit canonical question back into a transaction (the QR path).
    ///
    /// # Errors
    ///
    /// [`OcraError::QuestionFormat`] unless `question` is 27 ASCII digits; then the field
    /// errors of [`Transaction::new`] and [`OcraError::AccountType`].
    pub fn from_question(question: &str) -> Result<Transaction, OcraError> {
        if question.len() != 27 || !question.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OcraError::QuestionFormat);
        }
        let account_type = AccountType::from_code(question[7..8].chars().next().unwrap_or(' '))?;
        let amount: u64 = question[15..27]
            .parse()
            .map_err(|_| OcraError::QuestionFormat)?;
        Transaction::new(
            &question[0..4],
            &question[4..7],
            account_type,
            &question[8..15],
            amount,
        )
    }

    /// 金融機関コード (4 digits).
    pub fn bank_code(&self) -> &str {
        &self.bank_code
    }

    /// 支店コード (3 digits).
    pub fn branch_code(&self) -> &str {
        &self.branch_code
    }

    /// 預金種目.
    pub fn account_type(&self) -> AccountType {
        self.account_type
    }

    /// 口座番号 (7 digits).
    pub fn account_number(&self) -> &str {
        &self.account_number
    }

    /// The amount in yen.
    pub fn amount_yen(&self) -> u64 {
        self.amount_yen
    }

    /// The canonical OCRA question: bank(4) branch(3) type(1) account(7) amount(12, zero-padded),
    /// 27 digits. Injective: two different transactions never share a question.
    pub fn question(&self) -> String {
        format!(
            "{}{}{}{}{:012}",
            self.bank_code,
            self.branch_code,
            self.account_type.code(),
            self.account_number,
            self.amount_yen
        )
    }

    /// SHA-256 of `TRANSACTION_SUITE || 0x00 || question`, hex: what the audit records to name
    /// the transaction without repeating its fields (never the code).
    pub fn digest_hex(&self) -> String {
        let mut h = Sha256::new();
        h.update(TRANSACTION_SUITE.as_bytes());
        h.update([0]);
        h.update(self.question().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The parsed [`TRANSACTION_SUITE`].
pub fn transaction_suite() -> OcraSuite {
    OcraSuite {
        text: TRANSACTION_SUITE.to_owned(),
        hash: Algorithm::Sha256,
        digits: 8,
        counter: false,
        question: QuestionFormat::Alphanumeric,
        question_len: 27,
        password: None,
        session_len: None,
        time_step: Some(60),
    }
}

/// The OCRA key of transaction authentication, derived from the token's TOTP secret for this
/// purpose only: `HKDF-SHA256(salt = none, ikm = secret, info = TRANSACTION_KEY_INFO)`, 32 bytes
/// (RFC 5869). See the module doc for why this separates TOTP and transaction codes.
pub fn transaction_key(totp_secret: &Secret) -> Secret {
    let hk = Hkdf::<Sha256>::new(None, totp_secret.expose());
    let mut okm = Zeroizing::new(vec![0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so `expand` cannot fail; on the
    // impossible error the key stays all-zero only in `okm`, and we return an empty secret,
    // whose codes the server never sees from a real app.
    if hk.expand(TRANSACTION_KEY_INFO, &mut okm).is_err() {
        return Secret::from_bytes(Vec::new());
    }
    Secret::from_bytes(okm.to_vec())
}

/// The transaction time step at `unix_secs` (`T1M`: minutes since the epoch).
pub fn transaction_step_at(unix_secs: u64) -> u64 {
    unix_secs / TRANSACTION_STEP_SECS
}

/// The 8-digit transaction code for `transaction` at time step `step`, from the token's TOTP
/// secret (the key is derived with [`transaction_key`]).
pub fn transaction_code_at_step(
    totp_secret: &Secret,
    transaction: &Transaction,
    step: u64,
) -> Code {
    let key = transaction_key(totp_secret);
    let question = transaction.question();
    let input = OcraInput {
        question: &question,
        timestamp: Some(step),
        ..OcraInput::default()
    };
    // The suite is fixed and the question is 27 digits by construction, so this cannot fail;
    // fail closed with an empty code (which matches nothing) rather than panic.
    ocra(&transaction_suite(), &key, &input)
        .unwrap_or_else(|_| Code::from_computed(Zeroizing::new(String::new())))
}

/// The transaction code valid at `unix_secs`.
pub fn transaction_code(totp_secret: &Secret, transaction: &Transaction, unix_secs: u64) -> Code {
    transaction_code_at_step(totp_secret, transaction, transaction_step_at(unix_secs))
}

/// Checks a transaction code against every step in `first..=last` with the replay rule of
/// [`crate::totp::match_step`]: constant-time over all steps, newest fresh match wins, a match
/// at or before `last_accepted` is [`StepMatch::Replayed`].
///
/// The caller records an accepted step atomically with the transfer (exactly once), and counts
/// [`StepMatch::NoMatch`] as a failure toward the token's lock.
pub fn match_transaction_code(
    totp_secret: &Secret,
    transaction: &Transaction,
    code: &Code,
    first: u64,
    last: u64,
    last_accepted: Option<u64>,
) -> StepMatch {
    let key = transaction_key(totp_secret);
    let question = transaction.question();
    let suite = transaction_suite();
    let candidates = (first..=last).map(|step| {
        let input = OcraInput {
            question: &question,
            timestamp: Some(step),
            ..OcraInput::default()
        };
        let candidate = ocra(&suite, &key, &input)
            .unwrap_or_else(|_| Code::from_computed(Zeroizing::new(String::new())));
        (step, candidate)
    });
    match_candidates(code, candidates, last_accepted)
}
