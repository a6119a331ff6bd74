//! The one error type of the authenticator core (STYLE §2): a stable [`AppError::code`] the UI and
//! tests match on, and a Japanese and an English text for the user ([`AppError::message_ja`],
//! [`AppError::message_en`]).
//!
//! No variant holds a secret, a code or a password, and none holds raw text from a server or a
//! keystore: what the log gets is [`AppError::detail`], and that is also free of secrets.

use protocol::{OtpauthError, ProtocolError};

/// Everything the core can refuse or fail at, named for what the user (or the shell) can do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message_en())]
pub enum AppError {
    // --- input checked on the device, before anything is sent -------------------------------
    /// The service ID is not 8 digits.
    InvalidServiceId,
    /// The user ID is not 12 digits.
    InvalidUserId,
    /// The user ID's check digit does not match: a typing mistake.
    UserIdTypo,
    /// The activation password is not 4–8 digits.
    InvalidActivationPassword,
    /// The bundled (or overridden) directory has no backend for this service ID.
    UnknownService,
    /// A backend URL in the directory is not `https://` (plain `http://` only to loopback).
    InsecureBackendUrl,
    /// The server's certificate chain is good but its public key is not one of the keys
    /// pinned for this service: someone may be in the middle. Nothing was sent.
    PinMismatch,
    /// The server's certificate is not valid (unknown issuer, expired, wrong name). Nothing
    /// was sent.
    UntrustedServer,

    // --- the server's refusals of setup (stable codes of the app API) ------------------------
    /// `UNKNOWN_USER_ID`: no token with this service and user ID.
    UnknownUserId,
    /// `LINK_NOT_OPENED`: the mailed download link has not been opened yet.
    LinkNotOpened,
    /// `ISSUANCE_EXPIRED`: the issuance was not set up in time; issue again.
    IssuanceExpired,
    /// `WRONG_ACTIVATION_PASSWORD`, with the attempts left before the issuance dies.
    WrongActivationPassword {
        /// Attempts left (0 is never sent: the fifth failure is [`AppError::IssuanceDead`]).
        attempts_left: u32,
    },
    /// `ISSUANCE_DEAD`: five wrong activation passwords; the customer must issue again.
    IssuanceDead,
    /// `ALREADY_PROVISIONED`: this token was already set up (the secret is given only once).
    AlreadyProvisioned,
    /// `TOKEN_NOT_USABLE`: revoked, deactivated or otherwise finished.
    TokenNotUsable,
    /// `SETUP_EXCHANGE_UNKNOWN`, `PAKE_REPLAYED`, `PAKE_MESSAGE_FORMAT`: the setup exchange was
    /// cut off or garbled on the way; sending again starts a new one.
    SetupInterrupted,
    /// `SETUP_EXCHANGE_EXPIRED`: the exchange took longer than the server waits (a slow network);
    /// it counted as an attempt; sending again starts a new one.
    SetupTimedOut,
    /// `SETUP_V2_NOT_REGISTERED`, `SETUP_V1_NOT_REGISTERED`: this token cannot be set up by this
    /// app's way of setting up; a new token must be issued.
    SetupNotPossible,
    /// `RATE_LIMITED`: too many attempts; retry after this many seconds.
    RateLimited {
        /// Seconds to wait (from `Retry-After`).
        retry_after_secs: u64,
    },
    /// The server refused the request with another code (kept for support; not shown raw).
    Rejected {
        /// The server's stable code.
        code: String,
    },
    /// The server is down or overloaded (5xx, `UNAVAILABLE`); nothing happened, try later.
    ServerUnavailable,

    // --- transport -----------------------------------------------------------------------------
    /// The server could not be reached (no network, DNS, refused): nothing was sent.
    Network,
    /// A request that cannot change anything (e.g. the time) timed out.
    Timeout,
    /// The setup request may have reached the server but no answer came back. It is not
    /// retried: the secret is handed out only once, so a retry could only say
    /// `ALREADY_PROVISIONED`. The customer must check with the bank (or issue again).
    SetupOutcomeUnknown,
    /// The server answered with something that is not the app API.
    BadResponse,

    // --- the vault -------------------------------------------------------------------------------
    /// The OS keystore cannot be used (locked, no session, denied).
    KeystoreUnavailable,
    /// The keystore failed in some other way.
    KeystoreFailure,
    /// The metadata lists a token whose secret is no longer in the keystore (e.g. the kernel
    /// keyring after a reboot). The token must be set up again.
    SecretMissing,
    /// The metadata file exists but cannot be read as the vault's format. It is left untouched.
    MetadataCorrupt,
    /// The metadata file is missing although the keystore's index lists tokens.
    MetadataMissing {
        /// How many tokens the keystore's index lists.
        tokens: usize,
    },
    /// The metadata file could not be read or written.
    MetadataIo,
    /// Starting over (deleting the tokens the keystore lists) was asked while the token list is
    /// readable: tokens are then deleted one by one, from their settings.
    VaultIntact,
    /// The same token is already registered.
    DuplicateToken,
    /// No token with this ID.
    NoSuchToken,

    // --- the app lock --------------------------------------------------------------------------
    /// A PIN is set and was not given in this run: nothing is shown until it is.
    AppLocked,
    /// The app PIN is not 4–6 digits.
    PinFormat,
    /// A PIN is already set (change it with the current PIN instead).
    LockAlreadySet,
    /// No PIN is set.
    LockNotSet,
    /// A wrong PIN; the next attempt is taken after this many seconds.
    WrongPin {
        /// Seconds before the next attempt.
        retry_after_secs: u64,
        /// Wrong PINs left before the PIN is no longer taken.
        attempts_left: u32,
    },
    /// An attempt before the delay of the last wrong PIN has passed (nothing was checked).
    PinTryLater {
        /// Seconds left.
        retry_after_secs: u64,
    },
    /// Ten wrong PINs: the PIN is no longer taken; the token must be reprovisioned through the
    /// bank.
    PinLockedOut,
    /// Biometric unlock is off: the customer turns it on in the settings, with the PIN.
    BiometricOff,

    // --- import ----------------------------------------------------------------------------------
    /// An `otpauth://` URI was refused; holds the protocol's `OTPAUTH_…` code.
    Import {
        /// The stable `OTPAUTH_…` code.
        code: &'static str,
    },

    // --- transaction authentication (取引認証) ----------------------------------------------------
    /// A typed transfer or a scanned QR was refused; holds the protocol's `TX_…` code (which
    /// field).
    Transaction {
        /// The stable `TX_…` code.
        code: &'static str,
    },
    /// Transaction authentication is for bank tokens, not imported ones.
    NotBankToken,
    /// The scanned QR is for another token (another service or user ID).
    ChallengeForOtherToken,
}

impl From<protocol::ocra::OcraError> for AppError {
    fn from(e: protocol::ocra::OcraError) -> AppError {
        AppError::Transaction {
            code: match e {
                protocol::ocra::OcraError::BankCode
                | protocol::ocra::OcraError::BranchCode
                | protocol::ocra::OcraError::AccountType
                | protocol::ocra::OcraError::AccountNumber
                | protocol::ocra::OcraError::Amount
                | protocol::ocra::OcraError::PayeeName => e.code(),
                _ => "TX_CHALLENGE_FORMAT",
            },
        }
    }
}

impl AppError {
    /// The stable, machine-readable code (`SCREAMING_SNAKE_CASE`). Server refusals keep the
    /// server's code, so one code names one situation end to end.
    pub fn code(&self) -> &'static str {
        use AppError as E;
        match self {
            E::InvalidServiceId => "SERVICE_ID_FORMAT",
            E::InvalidUserId => "USER_ID_FORMAT",
            E::UserIdTypo => "USER_ID_CHECK_DIGIT",
            E::InvalidActivationPassword => "ACTIVATION_PASSWORD_FORMAT",
            E::UnknownService => "UNKNOWN_SERVICE_ID",
            E::InsecureBackendUrl => "INSECURE_BACKEND_URL",
            E::PinMismatch => "CERTIFICATE_PIN_MISMATCH",
            E::UntrustedServer => "UNTRUSTED_SERVER",
            E::UnknownUserId => "UNKNOWN_USER_ID",
            E::LinkNotOpened => "LINK_NOT_OPENED",
            E::IssuanceExpired => "ISSUANCE_EXPIRED",
            E::WrongActivationPassword { .. } => "WRONG_ACTIVATION_PASSWORD",
            E::IssuanceDead => "ISSUANCE_DEAD",
            E::AlreadyProvisioned => "ALREADY_PROVISIONED",
            E::TokenNotUsable => "TOKEN_NOT_USABLE",
            E::SetupInterrupted => "SETUP_INTERRUPTED",
            E::SetupTimedOut => "SETUP_TIMED_OUT",
            E::SetupNotPossible => "SETUP_NOT_POSSIBLE",
            E::RateLimited { .. } => "RATE_LIMITED",
            E::Rejected { .. } => "REJECTED",
            E::ServerUnavailable => "SERVER_UNAVAILABLE",
            E::Network => "NETWORK",
            E::Timeout => "TIMEOUT",
            E::SetupOutcomeUnknown => "SETUP_OUTCOME_UNKNOWN",
            E::BadResponse => "BAD_RESPONSE",
            E::KeystoreUnavailable => "KEYSTORE_UNAVAILABLE",
            E::KeystoreFailure => "KEYSTORE_FAILURE",
            E::SecretMissing => "SECRET_MISSING",
            E::MetadataCorrupt => "METADATA_CORRUPT",
            E::MetadataMissing { .. } => "METADATA_MISSING",
            E::MetadataIo => "METADATA_IO",
            E::VaultIntact => "VAULT_INTACT",
            E::DuplicateToken => "DUPLICATE_TOKEN",
            E::NoSuchToken => "NO_SUCH_TOKEN",
            E::AppLocked => "APP_LOCKED",
            E::PinFormat => "APP_PIN_FORMAT",
            E::LockAlreadySet => "APP_LOCK_ALREADY_SET",
            E::LockNotSet => "APP_LOCK_NOT_SET",
            E::WrongPin { .. } => "APP_PIN_WRONG",
            E::PinTryLater { .. } => "APP_PIN_WAIT",
            E::PinLockedOut => "APP_PIN_LOCKED_OUT",
            E::BiometricOff => "APP_BIOMETRIC_OFF",
            E::Import { code } => code,
            E::Transaction { code } => code,
            E::NotBankToken => "NOT_BANK_TOKEN",
            E::ChallengeForOtherToken => "CHALLENGE_OTHER_TOKEN",
        }
    }

    /// The text for the user, in Japanese (the manual's wording where it has one).
    pub fn message_ja(&self) -> String {
        use AppError as E;
        match self {
            E::InvalidServiceId => "サービスIDは半角数字8桁で入力してください。".into(),
            E::InvalidUserId => "ユーザIDは半角数字12桁で入力してください。".into(),
            E::UserIdTypo => "ユーザIDに誤りがあります。メールに記載のユーザIDをご確認ください。".into(),
            E::InvalidActivationPassword => "利用開始パスワードは半角数字4～8桁で入力してください。".into(),
            E::UnknownService => "このサービスIDには対応していません。サービスIDをご確認ください。".into(),
            E::InsecureBackendUrl => "接続先の設定が安全ではないため、接続できません。".into(),
            E::PinMismatch => "接続先が銀行のサーバーであることを確認できなかったため、通信を中止しました。情報は送信されていません。公衆無線LANなどをご利用の場合は、別の回線でお試しください。".into(),
            E::UntrustedServer => "接続先のサーバー証明書を確認できなかったため、通信を中止しました。情報は送信されていません。端末の日時と通信環境をご確認ください。".into(),
            E::UnknownUserId => "サービスIDまたはユーザIDに誤りがあります。".into(),
            E::LinkNotOpened => "メールに記載のダウンロード用URLを開いてから、初期設定を行ってください。".into(),
            E::IssuanceExpired => "有効期限が切れています。お手数ですが、トークンの発行からやり直してください。".into(),
            // 0: the count could not be had (the exchange could not be closed).
            E::WrongActivationPassword { attempts_left: 0 } => "利用開始パスワードが正しくありません。規定回数以上間違えると、トークンの発行からやり直しとなります。".into(),
            E::WrongActivationPassword { attempts_left } => format!(
                "利用開始パスワードが正しくありません。あと{attempts_left}回間違えると、トークンの発行からやり直しとなります。"
            ),
            E::IssuanceDead => "利用開始パスワードを規定回数以上間違えたため、このトークンは利用できません。トークンの発行からやり直してください。".into(),
            E::AlreadyProvisioned => "このトークンは初期設定済みです。".into(),
            E::TokenNotUsable => "このトークンは利用できません。".into(),
            E::SetupInterrupted => "通信の途中で初期設定が中断されました。もう一度「送信」を押してください。".into(),
            E::SetupTimedOut => "初期設定に時間がかかったため中断されました（1回の試行として数えられます）。通信環境の良い場所で、もう一度お試しください。".into(),
            E::SetupNotPossible => "このトークンは、このアプリでは初期設定できません。お手数ですが、トークンの発行からやり直してください。".into(),
            E::RateLimited { retry_after_secs } => format!(
                "短時間に多くの操作が行われました。{retry_after_secs}秒ほど待ってから、もう一度お試しください。"
            ),
            E::Rejected { .. } => "リクエストを受け付けられませんでした。アプリを最新版に更新してください。".into(),
            E::ServerUnavailable => "ただいまサービスを利用できません。しばらくしてから、もう一度お試しください。".into(),
            E::Network => "サーバーに接続できません。通信環境をご確認ください。".into(),
            E::Timeout => "通信がタイムアウトしました。もう一度お試しください。".into(),
            E::SetupOutcomeUnknown => "通信が途中で切れたため、初期設定が完了したか確認できません。もう一度お試しいただき、「初期設定済み」と表示された場合は、トークンの発行からやり直してください。".into(),
            E::BadResponse => "サーバーから予期しない応答がありました。しばらくしてから、もう一度お試しください。".into(),
            E::KeystoreUnavailable => "端末の安全な保存領域を利用できません。端末のロックを解除してから、もう一度お試しください。".into(),
            E::KeystoreFailure => "端末の安全な保存領域でエラーが発生しました。".into(),
            E::SecretMissing => "このトークンの鍵が端末に見つかりません。トークンを削除し、トークンの発行からやり直してください。".into(),
            E::MetadataCorrupt => "トークンの設定ファイルが読み取れません。トークンは削除されていません。サポートにお問い合わせください。".into(),
            E::MetadataMissing { tokens } => format!(
                "トークンの設定ファイルが見つかりません（登録済みのトークン{tokens}件）。トークンは削除されていません。トークンを削除して初期設定からやり直すか、サポートにお問い合わせください。"
            ),
            E::MetadataIo => "トークンの設定ファイルを読み書きできません。端末の空き容量をご確認ください。".into(),
            E::VaultIntact => "トークンの設定ファイルは正常です。トークンを削除する場合は、各トークンの設定画面から削除してください。".into(),
            E::DuplicateToken => "このトークンはすでに登録されています。".into(),
            E::NoSuchToken => "指定のトークンは登録されていません。".into(),
            E::AppLocked => "アプリがロックされています。暗証番号を入力してください。".into(),
            E::PinFormat => "暗証番号は半角数字4～6桁で入力してください。".into(),
            E::LockAlreadySet => "暗証番号はすでに設定されています。変更する場合は「暗証番号を変更」を選んでください。".into(),
            E::LockNotSet => "暗証番号は設定されていません。".into(),
            E::WrongPin { retry_after_secs, attempts_left } => format!(
                "暗証番号が正しくありません。{retry_after_secs}秒後に再入力できます。あと{attempts_left}回間違えると、このアプリではトークンを利用できなくなります。"
            ),
            E::PinTryLater { retry_after_secs } => format!(
                "暗証番号を続けて間違えたため、{retry_after_secs}秒お待ちください。"
            ),
            E::PinLockedOut => "暗証番号を規定回数以上間違えたため、このアプリではトークンを利用できません。お取引の銀行でトークンの再発行（再登録）を行い、初期設定からやり直してください。".into(),
            E::BiometricOff => "生体認証によるロック解除はオフです。暗証番号を入力してください（設定の「アプリのロック」でオンにできます）。".into(),
            E::Import { .. } => "QRコードの内容がワンタイムパスワードの設定として正しくありません。".into(),
            E::Transaction { code } => match *code {
                "TX_BANK_CODE" => "金融機関コードは半角数字4桁で入力してください。",
                "TX_BRANCH_CODE" => "支店コードは半角数字3桁で入力してください。",
                "TX_ACCOUNT_TYPE" => "預金種目は「普通」か「当座」を選んでください。",
                "TX_ACCOUNT_NUMBER" => "口座番号は半角数字7桁で入力してください。",
                "TX_AMOUNT" => "振込金額は1円以上の半角数字で入力してください。",
                "TX_PAYEE_NAME" => "QRコードの受取人名が正しくありません。",
                _ => "QRコードの内容が取引認証のものとして正しくありません。",
            }
            .into(),
            E::NotBankToken => "取引認証は銀行が発行したトークンでのみ利用できます。".into(),
            E::ChallengeForOtherToken => "このQRコードは別のトークン（サービスID・ユーザID）のものです。".into(),
        }
    }

    /// The text for the user, in English.
    pub fn message_en(&self) -> String {
        use AppError as E;
        match self {
            E::InvalidServiceId => "Enter the service ID as 8 digits.".into(),
            E::InvalidUserId => "Enter the user ID as 12 digits.".into(),
            E::UserIdTypo => "The user ID is not correct. Please check the user ID in the e-mail.".into(),
            E::InvalidActivationPassword => "Enter the activation password as 4 to 8 digits.".into(),
            E::UnknownService => "This service ID is not supported. Please check the service ID.".into(),
            E::InsecureBackendUrl => "The server address is not secure, so the app will not connect.".into(),
            E::PinMismatch => "The app could not confirm that it is talking to the bank's server, so it stopped. Nothing was sent. If you are on public Wi-Fi, please try another network.".into(),
            E::UntrustedServer => "The server's certificate could not be verified, so the app stopped. Nothing was sent. Please check the device's date and your connection.".into(),
            E::UnknownUserId => "The service ID or user ID is not correct.".into(),
            E::LinkNotOpened => "Open the download link in the e-mail first, then set up the app.".into(),
            E::IssuanceExpired => "This token has expired. Please issue a new token.".into(),
            E::WrongActivationPassword { attempts_left: 0 } => "The activation password is not correct. After too many wrong attempts you will have to issue a new token.".into(),
            E::WrongActivationPassword { attempts_left } => format!(
                "The activation password is not correct. After {attempts_left} more wrong attempt(s) you will have to issue a new token."
            ),
            E::IssuanceDead => "The activation password was wrong too many times, so this token cannot be used. Please issue a new token.".into(),
            E::AlreadyProvisioned => "This token has already been set up.".into(),
            E::TokenNotUsable => "This token can no longer be used.".into(),
            E::SetupInterrupted => "The setup was cut off on the way. Please press Send again.".into(),
            E::SetupTimedOut => "The setup took too long and was stopped (it counts as one attempt). Please try again where the connection is good.".into(),
            E::SetupNotPossible => "This token cannot be set up with this app. Please issue a new token.".into(),
            E::RateLimited { retry_after_secs } => format!(
                "Too many attempts. Please wait about {retry_after_secs} seconds and try again."
            ),
            E::Rejected { .. } => "The request was not accepted. Please update the app.".into(),
            E::ServerUnavailable => "The service is not available right now. Please try again later.".into(),
            E::Network => "Cannot reach the server. Please check your connection.".into(),
            E::Timeout => "The connection timed out. Please try again.".into(),
            E::SetupOutcomeUnknown => "The connection broke, so the app cannot tell whether setup finished. Try again; if the app says the token was already set up, please issue a new token.".into(),
            E::BadResponse => "The server sent an unexpected answer. Please try again later.".into(),
            E::KeystoreUnavailable => "The device's secure storage is not available. Unlock the device and try again.".into(),
            E::KeystoreFailure => "The device's secure storage reported an error.".into(),
            E::SecretMissing => "This token's key is no longer on the device. Delete the token and issue a new one.".into(),
            E::MetadataCorrupt => "The token settings file cannot be read. No token was deleted. Please contact support.".into(),
            E::MetadataMissing { tokens } => format!(
                "The token settings file is missing ({tokens} token(s) registered). No token was deleted. Delete the tokens and set the app up again, or contact support."
            ),
            E::MetadataIo => "The token settings file cannot be read or written. Please check the free space on the device.".into(),
            E::VaultIntact => "The token settings file is intact. To delete a token, use its settings screen.".into(),
            E::DuplicateToken => "This token is already registered.".into(),
            E::NoSuchToken => "There is no such token.".into(),
            E::AppLocked => "The app is locked. Please enter your PIN.".into(),
            E::PinFormat => "Enter the PIN as 4 to 6 digits.".into(),
            E::LockAlreadySet => "A PIN is already set. To change it, choose Change PIN.".into(),
            E::LockNotSet => "No PIN is set.".into(),
            E::WrongPin { retry_after_secs, attempts_left } => format!(
                "The PIN is not correct. You can try again in {retry_after_secs} second(s). After {attempts_left} more wrong PIN(s) the token can no longer be used in this app."
            ),
            E::PinTryLater { retry_after_secs } => format!(
                "Too many wrong PINs. Please wait {retry_after_secs} second(s)."
            ),
            E::PinLockedOut => "The PIN was wrong too many times, so the token can no longer be used in this app. Please ask your bank to reissue (re-register) the token, then set up the app again.".into(),
            E::BiometricOff => "Biometric unlock is off. Please enter your PIN (it can be turned on under App lock in the settings).".into(),
            E::Import { .. } => "The QR code does not hold a valid one-time password setting.".into(),
            E::Transaction { code } => match *code {
                "TX_BANK_CODE" => "Enter the bank code as 4 digits.",
                "TX_BRANCH_CODE" => "Enter the branch code as 3 digits.",
                "TX_ACCOUNT_TYPE" => "Choose ordinary or current as the account type.",
                "TX_ACCOUNT_NUMBER" => "Enter the account number as 7 digits.",
                "TX_AMOUNT" => "Enter the amount in yen as digits, 1 or more.",
                "TX_PAYEE_NAME" => "The payee name in the QR code is not valid.",
                _ => "The QR code is not a transaction authentication code.",
            }
            .into(),
            E::NotBankToken => "Transaction authentication works only with tokens your bank issued.".into(),
            E::ChallengeForOtherToken => "This QR code is for another token (another service or user ID).".into(),
        }
    }

    /// Maps a stable code of the app API (`ApiErrorBody::code`) to the error the user sees.
    pub fn from_api_code(
        code: &str,
        attempts_left: Option<u32>,
        retry_after_secs: Option<u64>,
    ) -> AppError {
        match code {
            "UNKNOWN_USER_ID" => AppError::UnknownUserId,
            // The server's word for a service ID it does not serve: the same refusal, and the
            // same message naming the service ID, as the app's own directory gives.
            "UNKNOWN_SERVICE_ID" => AppError::UnknownService,
            "LINK_NOT_OPENED" => AppError::LinkNotOpened,
            "ISSUANCE_EXPIRED" => AppError::IssuanceExpired,
            "WRONG_ACTIVATION_PASSWORD" => AppError::WrongActivationPassword {
                attempts_left: attempts_left.unwrap_or(0),
            },
            "ISSUANCE_DEAD" => AppError::IssuanceDead,
            "ALREADY_PROVISIONED" => AppError::AlreadyProvisioned,
            "TOKEN_NOT_USABLE" => AppError::TokenNotUsable,
            "SETUP_EXCHANGE_UNKNOWN" | "PAKE_REPLAYED" | "PAKE_MESSAGE_FORMAT" => {
                AppError::SetupInterrupted
            }
            "SETUP_EXCHANGE_EXPIRED" => AppError::SetupTimedOut,
            "SETUP_V2_NOT_REGISTERED" | "SETUP_V1_NOT_REGISTERED" => AppError::SetupNotPossible,
            "RATE_LIMITED" => AppError::RateLimited {
                retry_after_secs: retry_after_secs.unwrap_or(60),
            },
            "UNAVAILABLE" | "INTERNAL" => AppError::ServerUnavailable,
            // The server checks IDs too; the app checks first, so these mean a typo slipped by.
            "USER_ID_CHECK_DIGIT" => AppError::UserIdTypo,
            "USER_ID_FORMAT" => AppError::InvalidUserId,
            "SERVICE_ID_FORMAT" => AppError::InvalidServiceId,
            other => AppError::Rejected {
                code: other.chars().take(64).collect(),
            },
        }
    }
}

impl From<ProtocolError> for AppError {
    fn from(e: ProtocolError) -> AppError {
        match e {
            ProtocolError::ServiceIdFormat => AppError::InvalidServiceId,
            ProtocolError::UserIdCheckDigit => AppError::UserIdTypo,
            ProtocolError::UserIdFormat => AppError::InvalidUserId,
            // Secrets and params only come from the server or a QR code.
            _ => AppError::BadResponse,
        }
    }
}

impl From<OtpauthError> for AppError {
    fn from(e: OtpauthError) -> AppError {
        AppError::Import { code: e.code() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<AppError> {
        use AppError as E;
        vec![
            E::InvalidServiceId,
            E::InvalidUserId,
            E::UserIdTypo,
            E::InvalidActivationPassword,
            E::UnknownService,
            E::InsecureBackendUrl,
            E::PinMismatch,
            E::UntrustedServer,
            E::UnknownUserId,
            E::LinkNotOpened,
            E::IssuanceExpired,
            E::WrongActivationPassword { attempts_left: 3 },
            E::IssuanceDead,
            E::AlreadyProvisioned,
            E::TokenNotUsable,
            E::SetupInterrupted,
            E::SetupTimedOut,
            E::SetupNotPossible,
            E::RateLimited {
                retry_after_secs: 42,
            },
            E::Rejected {
                code: "INVALID_BODY".into(),
            },
            E::ServerUnavailable,
            E::Network,
            E::Timeout,
            E::SetupOutcomeUnknown,
            E::BadResponse,
            E::KeystoreUnavailable,
            E::KeystoreFailure,
            E::SecretMissing,
            E::MetadataCorrupt,
            E::MetadataMissing { tokens: 2 },
            E::MetadataIo,
            E::VaultIntact,
            E::DuplicateToken,
            E::NoSuchToken,
            E::AppLocked,
            E::PinFormat,
            E::LockAlreadySet,
            E::LockNotSet,
            E::WrongPin {
                retry_after_secs: 4,
                attempts_left: 7,
            },
            E::PinTryLater {
                retry_after_secs: 3,
            },
            E::PinLockedOut,
            E::BiometricOff,
            E::Import {
                code: "OTPAUTH_BAD_SECRET",
            },
            E::Transaction {
                code: "TX_ACCOUNT_NUMBER",
            },
            E::Transaction {
                code: "TX_CHALLENGE_FORMAT",
            },
            E::NotBankToken,
            E::ChallengeForOtherToken,
        ]
    }

    #[test]
    fn every_error_has_a_code_and_both_texts() {
        let errors = all();
        let mut codes: Vec<&str> = errors.iter().map(AppError::code).collect();
        for e in &errors {
            let code = e.code();
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}: the UI matches on codes, so they have one shape"
            );
            let ja = e.message_ja();
            assert!(
                ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
                "{code}: the Japanese text must be Japanese: {ja}"
            );
            let en = e.message_en();
            assert!(
                en.is_ascii() && en.ends_with('.'),
                "{code}: the English text is a sentence: {en}"
            );
            assert_eq!(e.to_string(), en, "Display is the English text");
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len(), "no two variants share a code");
    }

    #[test]
    fn texts_carry_the_numbers_the_user_needs() {
        let e = AppError::WrongActivationPassword { attempts_left: 3 };
        assert!(e.message_ja().contains("あと3回"));
        assert!(e.message_en().contains("3 more"));
        // Closing an exchange that failed may not bring the count back: no "0 more" then.
        let e = AppError::WrongActivationPassword { attempts_left: 0 };
        assert!(!e.message_ja().contains("あと0回"), "{}", e.message_ja());
        assert!(!e.message_en().contains("0 more"), "{}", e.message_en());
        let e = AppError::RateLimited {
            retry_after_secs: 42,
        };
        assert!(e.message_ja().contains("42秒"));
        assert!(e.message_en().contains("42 seconds"));
    }

    #[test]
    fn server_codes_map_to_variants() {
        assert_eq!(
            AppError::from_api_code("WRONG_ACTIVATION_PASSWORD", Some(2), None),
            AppError::WrongActivationPassword { attempts_left: 2 }
        );
        assert_eq!(
            AppError::from_api_code("RATE_LIMITED", None, Some(17)),
            AppError::RateLimited {
                retry_after_secs: 17
            }
        );
        for code in [
            "UNKNOWN_USER_ID",
            "UNKNOWN_SERVICE_ID",
            "LINK_NOT_OPENED",
            "ISSUANCE_EXPIRED",
            "ISSUANCE_DEAD",
            "ALREADY_PROVISIONED",
            "TOKEN_NOT_USABLE",
        ] {
            assert_eq!(
                AppError::from_api_code(code, None, None).code(),
                code,
                "server refusals keep the server's code end to end"
            );
        }
        // Provisioning v2's refusals say what to do, not "update the app".
        for (code, want) in [
            ("SETUP_EXCHANGE_UNKNOWN", AppError::SetupInterrupted),
            ("PAKE_REPLAYED", AppError::SetupInterrupted),
            ("PAKE_MESSAGE_FORMAT", AppError::SetupInterrupted),
            ("SETUP_EXCHANGE_EXPIRED", AppError::SetupTimedOut),
            ("SETUP_V2_NOT_REGISTERED", AppError::SetupNotPossible),
            ("SETUP_V1_NOT_REGISTERED", AppError::SetupNotPossible),
        ] {
            assert_eq!(AppError::from_api_code(code, None, None), want, "{code}");
        }
        assert_eq!(
            AppError::from_api_code("SOMETHING_NEW", None, None),
            AppError::Rejected {
                code: "SOMETHING_NEW".into()
            }
        );
    }
}
