//! The reference a transfer (振込) is given, as the customer sees it on the done screen and
//! staff see it in the customer's timeline: the Asia/Tokyo date of the transfer and six random
//! characters, `20261126-7F3K9Q`. The random part uses an alphabet without look-alikes (no 0,
//! O, 1 or I), so it can be read out over the phone; the caller draws it from the OS RNG and
//! the database keeps it unique (a collision is drawn again).
//!
//! Also the transfer's own rules (issue 16): the payee account as Zengin (全銀) has it
//! ([`PayeeAccount`]), the per-transfer and daily limits, and when a transfer asks for
//! transaction authentication (取引認証, [`TransactionAuthPolicy`]).

use rand::Rng;
use serde::{Deserialize, Serialize};

use protocol::ocra::{AccountType, Transaction};

use super::tokyo_date;

/// Digits 2–9 and the capital letters but I and O: 32 characters, none mistaken for another.
pub const REFERENCE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Random characters after the date: 32^6 (about a billion) a day.
pub const REFERENCE_RANDOM_LEN: usize = 6;

/// A new reference for a transfer made at `now` (unix seconds), its random part from `rng`.
pub fn new_reference(now: i64, rng: &mut impl Rng) -> String {
    let mut out = tokyo_date(now).format("%Y%m%d-").to_string();
    for _ in 0..REFERENCE_RANDOM_LEN {
        let i = rng.gen_range(0..REFERENCE_ALPHABET.len());
        out.push(char::from(REFERENCE_ALPHABET[i]));
    }
    out
}

/// The start of the Asia/Tokyo day of `now` (unix seconds): the daily limit counts from it.
pub fn tokyo_day_start(now: i64) -> i64 {
    let date = tokyo_date(now);
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Japan keeps +09:00 all year.
    midnight.and_utc().timestamp() - 9 * 3600
}

/// Whether `s` has the shape of a reference: `YYYYMMDD-` (a real date) and six characters of
/// [`REFERENCE_ALPHABET`].
pub fn is_reference(s: &str) -> bool {
    let Some((date, random)) = s.split_once('-') else {
        return false;
    };
    date.len() == 8
        && chrono::NaiveDate::parse_from_str(date, "%Y%m%d").is_ok()
        && random.len() == REFERENCE_RANDOM_LEN
        && random.bytes().all(|b| REFERENCE_ALPHABET.contains(&b))
}

/// The limits and the transaction-authentication policy (`[transfers]` in the config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferRules {
    /// Largest single transfer, in yen.
    pub max_amount: i64,
    /// Largest total a customer may transfer on one Asia/Tokyo day, in yen.
    pub daily_limit: i64,
    pub transaction_auth: TransactionAuthPolicy,
}

impl Default for TransferRules {
    fn default() -> Self {
        TransferRules {
            max_amount: 10_000_000,
            daily_limit: 20_000_000,
            transaction_auth: TransactionAuthPolicy::default(),
        }
    }
}

/// Why an amount is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBreach {
    /// Not 1..=`max_amount` yen.
    PerTransfer,
    /// More than is left of today's limit.
    Daily {
        /// Yen still allowed today.
        left: i64,
    },
}

impl TransferRules {
    /// Yen still allowed today after `spent_today`.
    pub fn daily_left(&self, spent_today: i64) -> i64 {
        (self.daily_limit - spent_today).max(0)
    }

    /// The limits, the one place they are applied (input screen and recording both ask).
    ///
    /// # Errors
    /// The limit `amount` breaks.
    pub fn check(&self, amount: i64, spent_today: i64) -> Result<(), LimitBreach> {
        if !(1..=self.max_amount).contains(&amount) {
            return Err(LimitBreach::PerTransfer);
        }
        let left = self.daily_left(spent_today);
        if amount > left {
            return Err(LimitBreach::Daily { left });
        }
        Ok(())
    }

    /// # Errors
    /// A limit out of range (English, for the operator).
    pub fn validate(&self) -> Result<(), String> {
        let max = i64::try_from(protocol::ocra::MAX_AMOUNT_YEN).unwrap_or(i64::MAX);
        if !(1..=max).contains(&self.max_amount) {
            return Err(format!("transfers.max_amount must be 1..={max} yen"));
        }
        if self.daily_limit < self.max_amount || self.daily_limit > max {
            return Err(format!(
                "transfers.daily_limit must be at least transfers.max_amount and at most {max} yen"
            ));
        }
        Ok(())
    }
}

/// When a transfer asks for transaction authentication instead of the ordinary one-time
/// password (only while the customer's token is in use). Default: a new payee, or 100,000 yen
/// or more.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionAuthPolicy {
    /// Every transfer.
    pub always: bool,
    /// A payee account the customer has not transferred to before.
    pub new_payee: bool,
    /// Transfers of this many yen or more (`None`: the amount alone never asks).
    pub amount_at_least: Option<i64>,
}

impl Default for TransactionAuthPolicy {
    fn default() -> Self {
        TransactionAuthPolicy {
            always: false,
            new_payee: true,
            amount_at_least: Some(100_000),
        }
    }
}

impl TransactionAuthPolicy {
    /// Whether this transfer asks for a transaction code.
    pub fn applies(&self, new_payee: bool, amount: i64) -> bool {
        self.always
            || (self.new_payee && new_payee)
            || self.amount_at_least.is_some_and(|n| amount >= n)
    }
}

/// Longest payee name, in characters (the Zengin record's 受取人名 field is 30).
pub const MAX_PAYEE_KANA: usize = 30;

/// Whether `c` may appear in a Zengin payee name: the shared contract's rule (the app shows
/// a transaction's payee name only if it holds to it too).
pub use protocol::ocra::is_zengin_char;

/// Which field of a payee account is wrong (the screens name it in Japanese).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayeeField {
    BankCode,
    BranchCode,
    AccountType,
    AccountNumber,
    Name,
}

impl PayeeField {
    /// The form field's name.
    pub fn name(self) -> &'static str {
        match self {
            PayeeField::BankCode => "bank_code",
            PayeeField::BranchCode => "branch_code",
            PayeeField::AccountType => "account_type",
            PayeeField::AccountNumber => "account_number",
            PayeeField::Name => "payee",
        }
    }
}

/// A payee account as Zengin has it: 金融機関コード (4 digits), 支店コード (3), 預金種目
/// (普通/当座), 口座番号 (7) and the 受取人名 in half-width katakana.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeAccount {
    pub bank_code: String,
    pub branch_code: String,
    /// `1` 普通, `2` 当座 (the Zengin codes).
    pub account_type: String,
    pub account_number: String,
    pub name: String,
}

impl PayeeAccount {
    /// Checks every field; returns each wrong one.
    ///
    /// # Errors
    /// The fields that break their rule, in form order.
    pub fn parse(
        bank_code: &str,
        branch_code: &str,
        account_type: &str,
        account_number: &str,
        name: &str,
    ) -> Result<PayeeAccount, Vec<PayeeField>> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let mut wrong = Vec::new();
        if !digits(bank_code, 4) {
            wrong.push(PayeeField::BankCode);
        }
        if !digits(branch_code, 3) {
            wrong.push(PayeeField::BranchCode);
        }
        if !matches!(account_type, "1" | "2") {
            wrong.push(PayeeField::AccountType);
        }
        if !digits(account_number, 7) {
            wrong.push(PayeeField::AccountNumber);
        }
        let chars = name.chars().count();
        if chars == 0
            || chars > MAX_PAYEE_KANA
            || !name.chars().all(is_zengin_char)
            || name.starts_with(' ')
            || name.ends_with(' ')
        {
            wrong.push(PayeeField::Name);
        }
        if !wrong.is_empty() {
            return Err(wrong);
        }
        Ok(PayeeAccount {
            bank_code: bank_code.to_owned(),
            branch_code: branch_code.to_owned(),
            account_type: account_type.to_owned(),
            account_number: account_number.to_owned(),
            name: name.to_owned(),
        })
    }

    /// 預金種目 as OCRA's question codes it.
    pub fn kind(&self) -> AccountType {
        if self.account_type == "2" {
            AccountType::Current
        } else {
            AccountType::Ordinary
        }
    }

    /// The transaction that a transfer of `amount` yen to this account signs.
    ///
    /// # Errors
    /// An amount outside 1..=999,999,999,999 (the fields were checked by [`PayeeAccount::parse`]).
    pub fn transaction(&self, amount: i64) -> Result<Transaction, protocol::ocra::OcraError> {
        let amount = u64::try_from(amount).map_err(|_| protocol::ocra::OcraError::Amount)?;
        Transaction::new(
            &self.bank_code,
            &self.branch_code,
            self.kind(),
            &self.account_number,
            amount,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payee_accounts_follow_zengin() {
        let ok = PayeeAccount::parse("0001", "123", "1", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ").unwrap();
        assert_eq!(ok.kind(), AccountType::Ordinary);
        assert_eq!(
            ok.transaction(150_000).unwrap().question(),
            "000112311234567000000150000"
        );
        assert!(PayeeAccount::parse("0001", "123", "2", "1234567", "ｶ)ｵﾂﾄﾊﾞﾝｸ").is_ok());
        assert!(PayeeAccount::parse("0001", "123", "1", "1234567", "ｺ-ﾋ- ABC 12").is_ok());
        assert_eq!(
            PayeeAccount::parse("001", "1234", "3", "123456", "").unwrap_err(),
            vec![
                PayeeField::BankCode,
                PayeeField::BranchCode,
                PayeeField::AccountType,
                PayeeField::AccountNumber,
                PayeeField::Name
            ]
        );
        for bad in [
            "ヤマダ タロウ",                   // full-width
            "ｷｬﾉﾝ",                            // small kana
            "ｺｰﾋｰ",                            // long-vowel mark
            "yamada",                          // lower case
            "ﾔﾏﾀﾞ\u{0}",                        // control
            " ﾔﾏﾀﾞ",                            // leading space
            "ｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱｱ", // 31
            "山田",
        ] {
            assert_eq!(
                PayeeAccount::parse("0001", "123", "1", "1234567", bad).unwrap_err(),
                vec![PayeeField::Name],
                "{bad:?}"
            );
        }
        assert!(PayeeAccount::parse("０００１", "123", "1", "1234567", "ｱ").is_err());
    }

    #[test]
    fn the_day_starts_at_tokyo_midnight() {
        // 2026-11-25 15:00:00 UTC is 2026-11-26 00:00:00 JST.
        assert_eq!(tokyo_day_start(1_795_618_800), 1_795_618_800);
        assert_eq!(tokyo_day_start(1_795_618_800 + 86_399), 1_795_618_800);
        assert_eq!(tokyo_day_start(1_795_618_799), 1_795_618_800 - 86_400);
    }

    #[test]
    fn transaction_authentication_policy() {
        let d = TransactionAuthPolicy::default();
        assert!(d.applies(true, 1));
        assert!(d.applies(false, 100_000));
        assert!(!d.applies(false, 99_999));
        let always = TransactionAuthPolicy {
            always: true,
            ..d.clone()
        };
        assert!(always.applies(false, 1));
        let only_new = TransactionAuthPolicy {
            amount_at_least: None,
            ..d.clone()
        };
        assert!(!only_new.applies(false, 9_999_999));
        let only_amount = TransactionAuthPolicy {
            new_payee: false,
            amount_at_least: Some(50_000),
            always: false,
        };
        assert!(!only_amount.applies(true, 49_999));
        assert!(only_amount.applies(false, 50_000));
        assert!(TransferRules::default().validate().is_ok());
        let r = TransferRules::default();
        assert_eq!(r.check(10_000_000, 0), Ok(()));
        assert_eq!(r.check(10_000_001, 0), Err(LimitBreach::PerTransfer));
        assert_eq!(r.check(0, 0), Err(LimitBreach::PerTransfer));
        assert_eq!(r.check(45_000, 19_955_000), Ok(()));
        assert_eq!(
            r.check(50_000, 19_955_000),
            Err(LimitBreach::Daily { left: 45_000 })
        );
        assert_eq!(r.daily_left(25_000_000), 0);
        let bad = TransferRules {
            daily_limit: 1,
            ..TransferRules::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_date_is_tokyo_and_the_rest_is_unambiguous() {
        // 2026-11-25 15:00:00 UTC is 2026-11-26 00:00:00 JST.
        let r = new_reference(1_795_618_800, &mut rand::rngs::OsRng);
        assert!(r.starts_with("20261126-"), "{r}");
        assert!(is_reference(&r), "{r}");
        let r = new_reference(1_795_618_799, &mut rand::rngs::OsRng);
        assert!(
            r.starts_with("20261125-"),
            "one second earlier is the day before: {r}"
        );
        for _ in 0..1000 {
            let r = new_reference(1_795_618_800, &mut rand::rngs::OsRng);
            assert!(!r[9..].contains(['0', 'O', '1', 'I']), "{r}");
        }
        assert_eq!(REFERENCE_ALPHABET.len(), 32);
    }

    #[test]
    fn shapes_that_are_not_references() {
        for bad in [
            "1",
            "20261126",
            "20261126-7F3K9",
            "20261126-7F3K9QQ",
            "20261126-7F3K0Q",
            "20261126-7f3k9q",
            "20261340-7F3K9Q",
            "2026112-77F3K9Q",
        ] {
            assert!(!is_reference(bad), "{bad}");
        }
        assert!(is_reference("20261126-7F3K9Q"));
    }
}
