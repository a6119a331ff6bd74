//! The mails' words (Japanese, as the bank sends them). The issuance mail carries the download
//! URL, the service ID and the user ID — never the activation password.

use crate::domain::tokyo_date;

/// A composed mail.
pub struct Composed {
    pub subject: String,
    pub body: String,
}

const FOOTER: &str = "\n\nお心当たりのない場合は、お手数ですが当組合までご連絡ください。\n\
    このメールは送信専用のアドレスから送信しています。ご返信いただいてもお答えできません。\n";

/// The mail 確定する sends: the download link and the IDs the app's setup asks for.
pub fn issuance(url: &str, service_id: &str, user_id: &str, link_expires_at: i64) -> Composed {
    Composed {
        subject: "【ワンタイムパスワード】アプリのダウンロードのご案内".into(),
        body: format!(
            "ソフトウェアトークンの発行を受け付けました。\n\n\
             このメールを受信したスマートフォンで、下記の「ダウンロードURL」を選択し、\n\
             ワンタイムパスワードアプリをダウンロードしてください。\n\n\
             ■ダウンロードURL\n{url}\n（有効期限：{} まで）\n\n\
             ■アプリの初期設定に必要な情報\n\
             サービスID：{service_id}\n\
             ユーザID：{user_id}\n\
             利用開始パスワード：お客さまがご登録になったもの、または当組合の窓口でお伝えしたもの（本メールには記載しておりません）\n\n\
             アプリの初期設定が終わりましたら、インターネットバンキングの\n\
             「ワンタイムパスワード申請」→「ワンタイムパスワード利用開始」から利用開始登録を行ってください。{FOOTER}",
            tokyo_date(link_expires_at).format("%Y年%m月%d日")
        ),
    }
}

/// Notices to the customer about their token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Activated,
    Deactivated,
    Locked,
    Replayed,
}

impl Notice {
    pub fn kind(self) -> &'static str {
        match self {
            Notice::Activated => "notice_activated",
            Notice::Deactivated => "notice_deactivated",
            Notice::Locked => "notice_locked",
            Notice::Replayed => "notice_replayed",
        }
    }
}

/// A notice's mail; `at` is shown in Japan time.
pub fn notice(n: Notice, user_id: &str, at: i64) -> Composed {
    let when = chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .with_timezone(&crate::domain::jst())
        .format("%Y年%m月%d日 %H:%M")
        .to_string();
    let (subject, text) = match n {
        Notice::Activated => (
            "【ワンタイムパスワード】利用開始のお知らせ",
            "ワンタイムパスワードの利用開始登録を受け付けました。\n\
             次回ログイン時から、ログインID・ログインパスワードに加えてワンタイムパスワードの入力が必要になります。",
        ),
        Notice::Deactivated => (
            "【ワンタイムパスワード】利用解除のお知らせ",
            "ワンタイムパスワードの利用解除を受け付けました。\n\
             次回ログイン時から「ワンタイムパスワード認証画面」は表示されません。\n\
             スマートフォンのアプリからトークンを削除してください。再開する場合は、翌日以降に改めて「トークン発行」を行ってください。",
        ),
        Notice::Locked => (
            "【ワンタイムパスワード】ロックのお知らせ",
            "誤ったワンタイムパスワードが続けて入力されたため、ワンタイムパスワードをロックしました。\n\
             ロックの解除は当組合までお問い合わせください。",
        ),
        Notice::Replayed => (
            "【ワンタイムパスワード】使用済みパスワードの入力について",
            "既に使用されたワンタイムパスワードが再度入力されたため、受け付けませんでした。\n\
             お客さまご自身の操作でない場合は、第三者にパスワードを知られたおそれがあります。\n\
             至急、ログインパスワード・確認用パスワードを変更し、当組合までご連絡ください。",
        ),
    };
    Composed {
        subject: subject.into(),
        body: format!("{text}\n\n日時：{when}\nユーザID：{user_id}{FOOTER}"),
    }
}

fn jst_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .with_timezone(&crate::domain::jst())
        .format("%Y年%m月%d日 %H:%M")
        .to_string()
}

/// What a メール通知パスワード confirms, shown in its mail so a tampered request shows.
#[derive(Debug, Clone, Copy)]
pub enum MailPasswordFor<'a> {
    /// Token issuance to this smartphone address.
    Issue {
        new_email: &'a str,
    },
    Transfer {
        payee: &'a str,
        amount: i64,
    },
    EmailChange {
        new_email: &'a str,
    },
}

fn yen(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The メール通知パスワード mail to the registered address: the password, what it confirms and
/// when it was asked for. `expires_at`: the latest it can be used (it also ends at logout).
pub fn mail_password(code: &str, what: MailPasswordFor<'_>, at: i64, expires_at: i64) -> Composed {
    let (subject, detail) = match what {
        MailPasswordFor::Issue { new_email } => (
            "【メール通知パスワード】トークン発行のお手続き",
            format!("お手続き：ソフトウェアトークン発行\n送付先スマートフォンメールアドレス：{new_email}"),
        ),
        MailPasswordFor::Transfer { payee, amount } => (
            "【メール通知パスワード】お振込のお手続き",
            format!("お手続き：振込\n振込先：{payee}\n振込金額：{}円", yen(amount)),
        ),
        MailPasswordFor::EmailChange { new_email } => (
            "【メール通知パスワード】メールアドレス変更のお手続き",
            format!("お手続き：登録メールアドレスの変更\n新しいメールアドレス：{new_email}"),
        ),
    };
    Composed {
        subject: subject.into(),
        body: format!(
            "インターネットバンキングで次のお手続きが行われています。\n\n{detail}\n受付日時：{}\n\n\
             ■メール通知パスワード\n{code}\n\n\
             確認画面で確認用パスワードとともに入力してください。\n\
             有効期限：{} まで（ログアウトすると無効になります）。一度だけ使用できます。\n\
             上記の内容に誤りがある場合やお心当たりのない場合は、入力せずに当組合までご連絡ください。{FOOTER}",
            jst_time(at),
            jst_time(expires_at)
        ),
    }
}

/// To the registered address when a token was issued to another address.
pub fn issued_elsewhere(new_email: &str, user_id: &str, at: i64) -> Composed {
    Composed {
        subject: "【ワンタイムパスワード】トークン発行のお知らせ".into(),
        body: format!(
            "ソフトウェアトークンが発行され、ダウンロードのご案内を次のメールアドレスへお送りしました。\n\n\
             送付先スマートフォンメールアドレス：{new_email}\n\
             ユーザID：{user_id}\n\
             日時：{}\n\n\
             お客さまご自身のお手続きでない場合は、至急当組合までご連絡ください。{FOOTER}",
            jst_time(at)
        ),
    }
}

/// To the old address when the registered address was changed.
pub fn email_changed(new_email: &str, at: i64) -> Composed {
    Composed {
        subject: "【インターネットバンキング】登録メールアドレス変更のお知らせ".into(),
        body: format!(
            "ご登録のメールアドレスを変更しました。今後のご案内は新しいメールアドレスへお送りします。\n\n\
             新しいメールアドレス：{new_email}\n\
             日時：{}\n\n\
             お客さまご自身のお手続きでない場合は、至急当組合までご連絡ください。{FOOTER}",
            jst_time(at)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_password_mail_names_what_it_confirms() {
        let m = mail_password(
            "01234567",
            MailPasswordFor::Transfer {
                payee: "テスト商事",
                amount: 1_500_000,
            },
            1_795_575_630,
            1_795_576_230,
        );
        assert!(m.body.contains("01234567"));
        assert!(m.body.contains("振込先：テスト商事"), "{}", m.body);
        assert!(m.body.contains("1,500,000円"), "{}", m.body);
        assert!(
            m.body.contains("2026年11月25日 12:00"),
            "the time, in Japan: {}",
            m.body
        );
        let m = mail_password(
            "01234567",
            MailPasswordFor::Issue {
                new_email: "new@example.jp",
            },
            1_795_575_630,
            1_795_576_230,
        );
        assert!(
            m.body.contains("new@example.jp"),
            "the new address: {}",
            m.body
        );
    }

    #[test]
    fn issuance_mail_has_link_and_ids() {
        let m = issuance(
            "https://bank.example/dl/abc",
            "10112231",
            "999800000001",
            1_795_575_630,
        );
        assert!(m.body.contains("https://bank.example/dl/abc"));
        assert!(m.body.contains("サービスID：10112231"));
        assert!(m.body.contains("ユーザID：999800000001"));
        assert!(m.body.contains("2026年11月25日"), "{}", m.body);
    }
}
