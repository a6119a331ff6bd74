//! The mails' words (Japanese, as the bank sends them). The issuance mail carries the download
//! URL, the service ID and the user ID — never the activation password.

use crate::config::BankConfig;
use crate::domain::tokyo_date;

/// A composed mail.
pub struct Composed {
    pub subject: String,
    pub body: String,
}

/// Every mail's closing: what to do about a mail one did not expect, who sent it and how to
/// reach them.
fn footer(bank: &BankConfig) -> String {
    format!(
        "\n\nお心当たりのない場合は、お手数ですが{we}までご連絡ください。\n\
         このメールは送信専用のアドレスから送信しています。ご返信いただいてもお答えできません。\n\n\
         ──────────────\n{name}\nお問い合わせ：{contact}\n",
        we = bank.we(false),
        name = bank.name,
        contact = bank.contact,
    )
}

/// The mail 確定する sends: the download link and the IDs the app's setup asks for.
pub fn issuance(
    bank: &BankConfig,
    url: &str,
    service_id: &str,
    user_id: &str,
    link_expires_at: i64,
) -> Composed {
    let (we, footer) = (bank.we(false), footer(bank));
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
             利用開始パスワード：お客様がご登録になったもの、または{we}の窓口でお伝えしたもの（本メールには記載しておりません）\n\n\
             アプリの初期設定が終わりましたら、インターネットバンキングの\n\
             「ワンタイムパスワード申請」→「ワンタイムパスワード利用開始」から利用開始登録を行ってください。{footer}",
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
pub fn notice(bank: &BankConfig, n: Notice, user_id: &str, at: i64) -> Composed {
    let footer = footer(bank);
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
             ロックの解除は{we}までお問い合わせください。",
        ),
        Notice::Replayed => (
            "【ワンタイムパスワード】使用済みパスワードの入力について",
            "既に使用されたワンタイムパスワードが再度入力されたため、受け付けませんでした。\n\
             お客様ご自身の操作でない場合は、第三者にパスワードを知られたおそれがあります。\n\
             至急、ログインパスワード・確認用パスワードを変更し、{we}までご連絡ください。",
        ),
    };
    Composed {
        subject: subject.into(),
        body: format!(
            "{}\n\n日時：{when}\nユーザID：{user_id}{footer}",
            text.replace("{we}", bank.we(false))
        ),
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
    /// A transfer: the payee's name as typed, the account the money goes to (Zengin codes:
    /// bank 4 digits, branch 3, type `1` 普通 / `2` 当座, number 7) and the amount.
    Transfer {
        payee: &'a str,
        bank_code: &'a str,
        branch_code: &'a str,
        account_type: &'a str,
        account_number: &'a str,
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
pub fn mail_password(
    bank: &BankConfig,
    code: &str,
    what: MailPasswordFor<'_>,
    at: i64,
    expires_at: i64,
) -> Composed {
    let (we, footer) = (bank.we(false), footer(bank));
    let (subject, detail) = match what {
        MailPasswordFor::Issue { new_email } => (
            "【メール通知パスワード】トークン発行のお手続き",
            format!("お手続き：ソフトウェアトークン発行\n送付先スマートフォンメールアドレス：{new_email}"),
        ),
        MailPasswordFor::Transfer {
            payee,
            bank_code,
            branch_code,
            account_type,
            account_number,
            amount,
        } => (
            "【メール通知パスワード】お振込のお手続き",
            // The account, not only the name typed beside it: a familiar name on another
            // account is what a tampered request looks like.
            format!(
                "お手続き：振込\n振込先：{payee}\n\
                 振込先口座：金融機関コード {bank_code} 支店コード {branch_code} {} {account_number}\n\
                 振込金額：{}円\n\
                 振込先口座がお客様のご依頼と異なる場合は、このパスワードを入力せず、{we}までご連絡ください。",
                if account_type == "2" { "当座" } else { "普通" },
                yen(amount)
            ),
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
             上記の内容に誤りがある場合やお心当たりのない場合は、入力せずに{we}までご連絡ください。{footer}",
            jst_time(at),
            jst_time(expires_at)
        ),
    }
}

/// To the registered address when a token was issued to another address.
pub fn issued_elsewhere(bank: &BankConfig, new_email: &str, user_id: &str, at: i64) -> Composed {
    let (we, footer) = (bank.we(false), footer(bank));
    Composed {
        subject: "【ワンタイムパスワード】トークン発行のお知らせ".into(),
        body: format!(
            "ソフトウェアトークンが発行され、ダウンロードのご案内を次のメールアドレスへお送りしました。\n\n\
             送付先スマートフォンメールアドレス：{new_email}\n\
             ユーザID：{user_id}\n\
             日時：{}\n\n\
             お客様ご自身のお手続きでない場合は、至急{we}までご連絡ください。{footer}",
            jst_time(at)
        ),
    }
}

/// To the old address when the registered address was changed.
pub fn email_changed(bank: &BankConfig, new_email: &str, at: i64) -> Composed {
    let (we, footer) = (bank.we(false), footer(bank));
    Composed {
        subject: "【インターネットバンキング】登録メールアドレス変更のお知らせ".into(),
        body: format!(
            "ご登録のメールアドレスを変更しました。今後のご案内は新しいメールアドレスへお送りします。\n\n\
             新しいメールアドレス：{new_email}\n\
             日時：{}\n\n\
             お客様ご自身のお手続きでない場合は、至急{we}までご連絡ください。{footer}",
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
            &BankConfig::default(),
            "01234567",
            MailPasswordFor::Transfer {
                payee: "テスト商事",
                bank_code: "0001",
                branch_code: "123",
                account_type: "2",
                account_number: "7654321",
                amount: 1_500_000,
            },
            1_795_575_630,
            1_795_576_230,
        );
        assert!(m.body.contains("01234567"));
        assert!(m.body.contains("振込先：テスト商事"), "{}", m.body);
        assert!(
            m.body
                .contains("振込先口座：金融機関コード 0001 支店コード 123 当座 7654321"),
            "{}",
            m.body
        );
        assert!(m.body.contains("1,500,000円"), "{}", m.body);
        assert!(
            m.body.contains("2026年11月25日 12:00"),
            "the time, in Japan: {}",
            m.body
        );
        let m = mail_password(
            &BankConfig::default(),
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
            &BankConfig::default(),
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

    #[test]
    fn every_mail_speaks_as_the_configured_institution() {
        let bank = BankConfig {
            name: "みらい信用組合".into(),
            kind: crate::config::BankKind::CreditUnion,
            contact: "0120-111-222（平日 9:00～17:00）".into(),
            ..BankConfig::default()
        };
        let mails = [
            issuance(&bank, "https://x/dl/a", "10112231", "999800000001", 0),
            notice(&bank, Notice::Locked, "999800000001", 0),
            notice(&bank, Notice::Replayed, "999800000001", 0),
            mail_password(
                &bank,
                "01234567",
                MailPasswordFor::EmailChange {
                    new_email: "a@b.jp",
                },
                0,
                600,
            ),
            issued_elsewhere(&bank, "a@b.jp", "999800000001", 0),
            email_changed(&bank, "a@b.jp", 0),
        ];
        for m in &mails {
            assert!(m.body.contains("当組合まで"), "{}", m.body);
            assert!(m.body.contains("みらい信用組合"), "signed: {}", m.body);
            assert!(m.body.contains("0120-111-222"), "contact line: {}", m.body);
            assert!(
                !m.body.contains("当行") && !m.body.contains('{'),
                "{}",
                m.body
            );
        }
        let bank = BankConfig::default();
        let m = notice(&bank, Notice::Locked, "999800000001", 0);
        assert!(m.body.contains("当行までお問い合わせ"), "{}", m.body);
        assert!(!m.body.contains("当組合"), "{}", m.body);
    }
}
