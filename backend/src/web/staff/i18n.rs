//! The console's Japanese. The console is written in English and every piece of its text is
//! looked up here by its English wording (the gettext way): templates say `{{ "Search"|t }}`,
//! handlers pass English strings through [`tr`]. Wording without an entry stays English (a test
//! checks that every template string has one). `{name}` placeholders are filled after
//! translation. Engine refusals are translated by their stable code ([`error_text`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::web::pages::i18n::Lang;

/// (English, Japanese).
const JA: &[(&str, &str)] = &[
    // Frame and login.
    ("{bank} staff console", "{bank} スタッフ画面"),
    ("{bank} · Staff console", "{bank} · スタッフ画面"),
    ("Staff console", "スタッフ画面"),
    ("Console", "スタッフ画面"),
    ("Search", "検索"),
    ("Approvals", "承認"),
    ("Log out", "ログアウト"),
    ("operator", "オペレーター"),
    ("supervisor", "スーパーバイザー"),
    ("Staff login", "スタッフログイン"),
    ("Staff login ID", "スタッフログインID"),
    ("Password", "パスワード"),
    ("Log in", "ログイン"),
    ("Customer internet-banking logins do not work here. Staff accounts are created by the administrators", "お客さまのインターネットバンキングのログインIDは使えません。スタッフのアカウントは管理者が作成します"),
    ("Your session ended after a period of inactivity. Log in again.", "一定時間操作がなかったため、ログアウトしました。再度ログインして下さい。"),
    ("You have logged out.", "ログアウトしました。"),
    ("Code from your authenticator app", "認証アプリのコード"),
    ("The code comes from the authenticator app you set up with the QR code shown when your account was created.", "コードは、アカウント作成時に表示されたQRコードで設定した認証アプリに表示されます。"),
    ("Enter your staff login ID, password and code.", "スタッフログインID、パスワード、コードを入力して下さい。"),
    ("The login ID, password or code is incorrect.", "ログインID、パスワードまたはコードが正しくありません。"),
    ("Too many failed logins from this account or this address: logins are refused for a while, even the right password. Try again later.", "このアカウントまたはこの接続元からのログイン失敗が多すぎるため、しばらくの間ログインできません（正しいパスワードでも同様です）。時間をおいてから、もう一度お試し下さい。"),
    ("The login form has expired. Reload the page and try again.", "ログイン画面の有効期限が切れました。画面を再読み込みしてから、もう一度お試し下さい。"),
    ("The form has expired or did not come from this console. Reload the page and try again.", "フォームの有効期限が切れたか、この画面から送信されたものではありません。画面を再読み込みしてから、もう一度お試し下さい。"),
    ("The service is temporarily unavailable. Try again shortly.", "ただいまサービスを利用できません。しばらくしてから、もう一度お試し下さい。"),
    ("Internal error. Quote this id to support: {id}", "システムエラーが発生しました。システム担当にこのIDをお伝え下さい: {id}"),
    ("What was sent is too large. Go back, shorten the input and try again.", "送信された内容が大きすぎます。戻って入力内容を短くし、もう一度お試し下さい。"),
    ("The input contains characters that cannot be used (such as control characters), or is too long. Go back, check it and try again.", "入力内容に使用できない文字（制御文字など）が含まれているか、入力が長すぎます。戻って入力内容を確認し、もう一度お試し下さい。"),
    ("Back", "戻る"),
    // Search.
    ("Customer search", "お客さま検索"),
    ("Login ID, user ID or e-mail address", "ログインID、ユーザIDまたはメールアドレス"),
    ("Login ID", "ログインID"),
    ("Name", "氏名"),
    ("E-mail on file", "登録メールアドレス"),
    ("No customer matches “{q}”.", "「{q}」に該当するお客さまはいません。"),
    // The customer page.
    ("Customer {login}", "お客さま {login}"),
    ("Reason (required)", "理由（必須）"),
    ("A {kind} request (#{id}) by staff:{who} is waiting for a second supervisor:", "staff:{who} による{kind}の申請（#{id}）が、別のスーパーバイザーの承認を待っています:"),
    ("approvals", "承認"),
    ("Customer", "お客さま"),
    ("Customer since", "登録日時"),
    ("Next-day rule", "翌日再発行ルール"),
    ("waived for the next issuance", "次回の発行では免除"),
    ("applies", "適用"),
    ("Current token", "現在のトークン"),
    ("State", "状態"),
    ("Issued (mail sent, link not opened)", "発行済（メール送信済、リンク未開封）"),
    ("Issued (link opened, app not set up)", "発行済（リンク開封済、アプリ未設定）"),
    ("Set up (waiting for the first code)", "設定済（利用開始の認証待ち）"),
    ("Active", "利用中"),
    ("Deactivated by the customer", "お客さまが利用停止"),
    ("Revoked by staff", "スタッフが失効"),
    ("Void (expired or replaced before setup)", "無効（設定前に期限切れまたは再発行）"),
    ("Lock", "ロック"),
    ("Locked", "ロック中"),
    ("since {at}", "{at} から"),
    ("Not locked", "ロックなし"),
    ("{n} consecutive failure(s)", "連続誤り {n} 回"),
    ("User ID", "ユーザID"),
    ("Service ID", "サービスID"),
    ("Mailed to", "送信先"),
    ("Issued", "発行"),
    ("setup possible until {at}", "{at} まで設定可能"),
    ("Link opened", "リンク開封"),
    ("App set up", "アプリ設定"),
    ("Activated", "利用開始"),
    ("Last used", "最終利用"),
    ("Deactivated", "利用停止"),
    ("Revoked", "失効"),
    ("Device at setup", "設定時の端末"),
    ("No token has been issued.", "トークンは発行されていません。"),
    ("Actions", "操作"),
    ("Every action needs a reason and is recorded in the audit trail with your staff ID.", "操作にはすべて理由が必要です。操作はスタッフIDとともに監査ログに記録されます。"),
    ("Unlock the token", "トークンのロック解除"),
    ("Unlock", "ロック解除"),
    ("Resend the setup mail", "設定メールの再送"),
    ("A fresh download link goes to {email}; earlier links stop working.", "新しいダウンロードリンクを {email} に送信します。以前のリンクは使えなくなります。"),
    ("Revoke (lost or stolen phone)", "失効（スマートフォンの紛失・盗難）"),
    ("The token stops verifying once a second supervisor approves.", "別のスーパーバイザーが承認すると、トークンは直ちに使えなくなります。"),
    ("The token stops verifying at once.", "トークンは直ちに使えなくなります。"),
    ("Revoke", "失効"),
    ("Reprovision (new or changed phone)", "再発行（スマートフォンの機種変更など）"),
    ("Once a second supervisor approves, revokes the current token and starts a new issuance usable at once (the next-day rule is waived).", "別のスーパーバイザーが承認すると、現在のトークンを失効させ、すぐに使える新しい発行を始めます（翌日再発行ルールは免除）。"),
    ("Revokes the current token and starts a new issuance usable at once (the next-day rule is waived).", "現在のトークンを失効させ、すぐに使える新しい発行を始めます（翌日再発行ルールは免除）。"),
    ("New activation password", "新しい利用開始パスワード"),
    ("The customer chooses it in internet banking (only the wait is waived)", "お客さまがインターネットバンキングで設定する（翌日までの待ちのみ免除）"),
    ("Generate it now, issue and mail the new token; I read it out after identity checks", "いま生成して新しいトークンを発行・メール送信する（本人確認の後、口頭でお伝えする）"),
    ("New e-mail address for a generated issuance (empty: {email})", "生成して発行する場合の新しいメールアドレス（空欄: {email}）"),
    ("none on file", "登録なし"),
    ("Reprovision", "再発行"),
    ("Revoking and reprovisioning need a supervisor.", "失効と再発行にはスーパーバイザーの権限が必要です。"),
    ("Earlier tokens", "過去のトークン"),
    ("Ended", "終了"),
    ("Device", "端末"),
    ("Audit trail", "監査ログ"),
    ("Recent transfers", "最近の振込"),
    ("Mail not delivered", "お客さまに届いていないメール"),
    ("These mails have not reached the customer: the last error says why (a mail server outage, an address refused, a password that expired). A mail given up on is not sent again.", "以下のメールはお客さまに届いていません。理由は「最後のエラー」をご覧下さい（メールサーバーの障害、受け付けられなかったアドレス、有効期限の切れたパスワードなど）。送信を中止したメールは再送されません。"),
    ("the address cannot be mailed", "このアドレスにはメールを送れません"),
    ("the mailed password expired before it could be sent", "送信できないうちにメール通知パスワードの有効期限が切れました"),
    ("the mailed password was replaced, used or ended before it could be sent", "送信前にメール通知パスワードが再発行・使用・無効化されました"),
    ("no mail server accepted it within mail.give_up_after_hours", "mail.give_up_after_hours の期間内にメールサーバーが受け付けませんでした"),
    ("Mail", "メール"),
    ("To", "宛先"),
    ("Attempts", "送信回数"),
    ("Status", "状態"),
    ("Last error", "最後のエラー"),
    ("Given up: not sent", "送信中止（未送信）"),
    ("Retrying", "再送待ち"),
    ("Download link", "ダウンロードリンク"),
    ("Mailed password", "メール通知パスワード"),
    ("Notice: token issued to another address", "お知らせ: 別のアドレスへのトークン発行"),
    ("Notice: OTP activated", "お知らせ: 利用開始"),
    ("Notice: OTP deactivated", "お知らせ: 利用解除"),
    ("Notice: token locked", "お知らせ: トークンのロック"),
    ("Notice: code used again", "お知らせ: コードの再使用"),
    ("Notice: e-mail address changed", "お知らせ: メールアドレスの変更"),
    ("Reference", "受付番号"),
    ("Payee", "受取人名"),
    ("Payee account", "振込先口座"),
    ("Amount (yen)", "金額（円）"),
    ("New payee", "新規振込先"),
    ("Transaction authentication", "取引認証"),
    ("Current", "当座"),
    ("Ordinary", "普通"),
    ("Yes", "はい"),
    ("No", "いいえ"),
    ("Used", "あり"),
    ("Not used", "なし"),
    ("newest first", "新しい順"),
    ("Export as CSV", "CSVで出力"),
    ("When", "日時"),
    ("Who", "操作者"),
    ("What", "内容"),
    ("Outcome", "結果"),
    ("From", "接続元"),
    ("Detail", "詳細"),
    ("No events.", "記録はありません。"),
    ("Newest", "最新"),
    ("Older events", "さらに古い記録"),
    ("The token was unlocked.", "トークンのロックを解除しました。"),
    ("The setup mail was sent again with a fresh download link; earlier links no longer work.", "新しいダウンロードリンクで設定メールを再送しました。以前のリンクは使えません。"),
    ("The token was revoked: it no longer verifies codes.", "トークンを失効させました。今後ワンタイムパスワードは認証されません。"),
    ("Revocation requested: it takes effect when a second supervisor approves it.", "失効を申請しました。別のスーパーバイザーの承認で有効になります。"),
    ("Reprovisioning requested: it takes effect when a second supervisor approves it.", "再発行を申請しました。別のスーパーバイザーの承認で有効になります。"),
    ("Choose how the customer's new activation password is set.", "新しい利用開始パスワードの設定方法を選んで下さい。"),
    // Reprovisioned.
    ("Reprovisioning", "再発行"),
    ("The old token was revoked and the customer can start again at once (the next-day rule is waived).", "以前のトークンを失効させました。お客さまはすぐに新しいトークンを設定できます（翌日再発行ルールは免除）。"),
    ("Reprovisioning requested (request #{id}): it takes effect when a second supervisor approves it.", "再発行を申請しました（申請 #{id}）。別のスーパーバイザーの承認で有効になります。"),
    ("New user ID:", "新しいユーザID:"),
    ("The setup mail with the download link has been sent.", "ダウンロードリンクを記載した設定メールを送信しました。"),
    ("After checking the customer's identity, read out the new activation password:", "お客さまの本人確認の後、新しい利用開始パスワードを口頭でお伝え下さい:"),
    ("It is shown only on this page and only now; it is stored hashed and cannot be shown again. Do not write it down.", "このパスワードはこの画面に今回限り表示されます。ハッシュ化して保存されるため、再表示はできません。書き留めないで下さい。"),
    ("Ask the customer to issue a new token in internet banking (One-time password → Issue a token), choosing their own activation password.", "インターネットバンキング（ワンタイムパスワード → トークン発行）で、お客さまご自身の利用開始パスワードを設定して新しいトークンを発行していただくよう、ご案内下さい。"),
    ("Back to the customer", "お客さまの画面に戻る"),
    // Approvals.
    ("Pending approvals", "承認待ちの申請"),
    ("The four-eyes rule is off: revocations and reprovisioning take effect at once.", "二人承認ルールは無効です。失効と再発行は直ちに有効になります。"),
    ("Kind", "種類"),
    ("Token", "トークン"),
    ("Reason", "理由"),
    ("Requested", "申請"),
    ("Decision", "判断"),
    ("revoke", "失効"),
    ("reprovision", "再発行"),
    ("customer password", "お客さまが設定するパスワード"),
    ("generated password", "生成したパスワード"),
    ("to {email}", "送信先 {email}"),
    ("customer {id}", "お客さま {id}"),
    ("you", "あなた"),
    ("Reason for withdrawing", "取り下げの理由"),
    ("Withdraw", "取り下げ"),
    ("A second supervisor must approve your own request.", "ご自身の申請は、別のスーパーバイザーが承認する必要があります。"),
    ("Approve", "承認"),
    ("Reason for rejecting", "却下の理由"),
    ("Reject", "却下"),
    ("Waiting for a supervisor", "スーパーバイザーの承認待ち"),
    ("Nothing is waiting for approval.", "承認待ちの申請はありません。"),
    ("The request was approved and has taken effect.", "申請を承認しました。処理は完了しています。"),
    ("The request was rejected.", "申請を却下しました。"),
    ("The request was withdrawn.", "申請を取り下げました。"),
];

/// Engine refusals the console meets, by stable code.
const ERRORS_JA: &[(&str, &str)] = &[
    ("STAFF_FORBIDDEN", "この操作はあなたの権限ではできません。"),
    ("REASON_REQUIRED", "理由を3文字以上で入力して下さい。"),
    (
        "INVALID_REASON",
        "理由は改行なしの500文字以内で入力して下さい。",
    ),
    (
        "EMAIL_REQUIRED",
        "登録メールアドレスがないため、新しいメールアドレスを入力して下さい。",
    ),
    ("INVALID_EMAIL", "メールアドレスの形式が正しくありません。"),
    (
        "NOT_AWAITING_SETUP",
        "このトークンは設定待ちではないため、設定メールを再送できません。",
    ),
    (
        "ISSUANCE_EXPIRED",
        "この発行は設定されないまま有効期限が切れています。お客さまに発行の申込みからやり直していただいてください。",
    ),
    (
        "ISSUANCE_DEAD",
        "この発行は利用開始パスワードの試行回数を使い切っています。お客さまに発行の申込みからやり直していただいてください。",
    ),
    (
        "REQUEST_PENDING",
        "このお客さまには承認待ちの申請がすでにあります。",
    ),
    (
        "REQUEST_NOT_PENDING",
        "承認待ちの該当する申請はありません。",
    ),
    (
        "STAFF_STALE",
        "画面を表示した後にトークンが変わりました。画面を再読み込みして確認して下さい。",
    ),
    ("UNKNOWN_CUSTOMER", "該当するお客さまがいません。"),
    (
        "UNKNOWN_USER_ID",
        "このお客さまの該当するトークンがありません。",
    ),
    (
        "ILLEGAL_TRANSITION",
        "トークンの現在の状態では、この操作はできません。",
    ),
    ("LIVE_TOKEN_EXISTS", "有効なトークンがすでにあります。"),
    ("REISSUE_NEXT_DAY", "翌日以降でないと再発行できません。"),
];

fn table() -> &'static HashMap<&'static str, &'static str> {
    static T: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    T.get_or_init(|| JA.iter().copied().collect())
}

/// `en` in `lang`: the Japanese entry for it, or `en` itself.
pub fn tr(lang: Lang, en: &str) -> Cow<'_, str> {
    match lang {
        Lang::Ja => table()
            .get(en)
            .map_or(Cow::Borrowed(en), |ja| Cow::Borrowed(*ja)),
        Lang::En => Cow::Borrowed(en),
    }
}

/// [`tr`], then `{name}` replaced by its value.
pub fn tr_with(lang: Lang, en: &str, args: &[(&str, &str)]) -> String {
    let mut out = tr(lang, en).into_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// An engine refusal's text: its Japanese by code, or the engine's English message.
pub fn error_text(lang: Lang, code: &str, english: &str) -> String {
    let text = match lang {
        Lang::Ja => ERRORS_JA
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(english, |(_, ja)| *ja),
        Lang::En => english,
    };
    format!("{text} ({code})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every literal the templates translate (`"…"|t`) and every handler string that goes
    /// through `tr` has its Japanese, and no entry is there twice.
    #[test]
    fn every_console_string_has_japanese() {
        let mut seen = std::collections::HashSet::new();
        for (en, _) in JA {
            assert!(seen.insert(*en), "twice: {en}");
        }
        let sources = [
            include_str!("../../../templates/staff/base.html"),
            include_str!("../../../templates/staff/login.html"),
            include_str!("../../../templates/staff/search.html"),
            include_str!("../../../templates/staff/customer.html"),
            include_str!("../../../templates/staff/approvals.html"),
            include_str!("../../../templates/staff/reprovisioned.html"),
            include_str!("../../../templates/staff/message.html"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for (i, _) in src.match_indices("\"|t") {
                let start = src[..i].rfind('"').unwrap() + 1;
                let en = &src[start..i];
                if table().get(en).is_none() {
                    missing.push(en.to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "no Japanese for: {missing:?}");
        assert_eq!(tr(Lang::Ja, "Search"), "検索");
        assert_eq!(tr(Lang::En, "Search"), "Search");
        assert_eq!(tr(Lang::Ja, "not in the table"), "not in the table");
        assert_eq!(
            tr_with(Lang::Ja, "customer {id}", &[("id", "7")]),
            "お客さま 7"
        );
        assert_eq!(
            error_text(Lang::Ja, "STAFF_FORBIDDEN", "x"),
            "この操作はあなたの権限ではできません。 (STAFF_FORBIDDEN)"
        );
        assert_eq!(
            error_text(Lang::En, "STAFF_FORBIDDEN", "x"),
            "x (STAFF_FORBIDDEN)"
        );
    }
}
