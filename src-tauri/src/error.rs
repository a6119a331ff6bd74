//! What every command rejects with: the core's [`AppError`] (or the shell's own refusal),
//! serialized for the UI as `{code, message_ja, message_en}` (STYLE §2: never a raw `String`).

use app::AppError;
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// A command's error.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Anything the core refused or failed at.
    #[error(transparent)]
    App(#[from] AppError),
    /// Setup was sent without 「上記の内容に同意する」 ticked.
    #[error("the terms were not agreed to")]
    TermsNotAgreed,
    /// The clipboard could not be written.
    #[error("the clipboard is not available")]
    Clipboard,
    /// The biometric check failed or was cancelled (phones).
    #[error("biometric authentication failed")]
    BiometricFailed,
}

impl ShellError {
    /// Stable code the UI matches on.
    pub fn code(&self) -> &'static str {
        match self {
            ShellError::App(e) => e.code(),
            ShellError::TermsNotAgreed => "TERMS_NOT_AGREED",
            ShellError::Clipboard => "CLIPBOARD_UNAVAILABLE",
            ShellError::BiometricFailed => "BIOMETRIC_FAILED",
        }
    }

    /// The Japanese text to show.
    pub fn message_ja(&self) -> String {
        match self {
            ShellError::App(e) => e.message_ja(),
            ShellError::TermsNotAgreed => "「上記の内容に同意する」にチェックしてください。".into(),
            ShellError::Clipboard => "コピーできませんでした。".into(),
            ShellError::BiometricFailed => {
                "生体認証を確認できませんでした。暗証番号を入力してください。".into()
            }
        }
    }

    /// The English text to show.
    pub fn message_en(&self) -> String {
        match self {
            ShellError::App(e) => e.message_en(),
            ShellError::TermsNotAgreed => "Please tick “I agree to the above”.".into(),
            ShellError::Clipboard => "The code could not be copied.".into(),
            ShellError::BiometricFailed => {
                "Biometric authentication did not succeed. Please enter your PIN.".into()
            }
        }
    }
}

impl Serialize for ShellError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ShellError", 3)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message_ja", &self.message_ja())?;
        s.serialize_field("message_en", &self.message_en())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_both_texts() {
        let v = serde_json::to_value(ShellError::from(AppError::WrongActivationPassword {
            attempts_left: 3,
        }))
        .unwrap();
        assert_eq!(v["code"], "WRONG_ACTIVATION_PASSWORD");
        assert!(v["message_ja"]
            .as_str()
            .unwrap()
            .contains("利用開始パスワード"));
        assert!(!v["message_en"].as_str().unwrap().is_empty());
        assert_eq!(
            v.as_object().unwrap().len(),
            3,
            "nothing else crosses IPC: {v}"
        );

        let v = serde_json::to_value(ShellError::TermsNotAgreed).unwrap();
        assert_eq!(v["code"], "TERMS_NOT_AGREED");
    }
}
