//! The screens' words: Japanese from the customer manual (screen IDs and labels as it shows
//! them), English alongside. Templates read them as `t.<key>`.

use std::collections::BTreeMap;

/// Display language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// (key, Japanese, English)
const MESSAGES: &[(&str, &str, &str)] = &[
    ("bank", "{bank} インターネットバンキング", "{bank} Internet Banking"),
    ("footer_contact", "お問い合わせ", "Contact"),
    ("switch_lang", "English", "日本語"),
    ("switch_lang_label", "Switch to English", "日本語に切り替える"),
    ("screen_id", "画面ID", "Screen ID"),
    ("logout", "ログアウト", "Log out"),
    ("nav_top", "トップページ", "Top page"),
    ("nav_otp", "ワンタイムパスワード申請", "One-time password"),
    ("nav_transfer", "振込・振替", "Transfers"),
    ("required", "必須", "Required"),
    ("back", "戻る", "Back"),
    ("cancel_application", "申込を中止する", "Cancel the application"),
    ("to_top", "トップページへ", "To the top page"),
    ("next", "次へ", "Next"),
    ("softkbd", "ソフトウェアキーボードを使用して入力する", "Use the software keyboard"),
    ("softkbd_close", "閉じる", "Close"),
    ("softkbd_clear", "クリア", "Clear"),
    ("softkbd_backspace", "1文字削除", "Delete one character"),
    ("softkbd_shift", "大文字/小文字", "Upper/lower case"),
    ("softkbd_title", "ソフトウェアキーボード", "Software keyboard"),
    ("errors_title", "入力内容に誤りがあります。", "Please correct the fields below."),
    // login
    ("login_title", "ログイン", "Log in"),
    ("login_lead", "ログインIDとログインパスワードを入力し、「ログイン」ボタンを押して下さい。", "Enter your login ID and login password and press \"Log in\"."),
    ("login_id", "ログインID", "Login ID"),
    ("login_password", "ログインパスワード", "Login password"),
    ("login_button", "ログイン", "Log in"),
    ("login_failed", "ログインIDまたはログインパスワードが正しくありません。", "The login ID or login password is incorrect."),
    ("login_throttled", "ご利用の回線からのログインの失敗が多いため、一時的にログインを制限しています。約{n}分後に再度お試し下さい。", "Too many failed logins came from your network, so login is limited for now. Please try again in about {n} minutes."),
    ("login_locked", "パスワードの誤入力が所定の回数に達したため、ログインを停止しています。約{n}分後に再度ログインして下さい。", "Too many wrong passwords were entered, so login is stopped. Please log in again in about {n} minutes."),
    ("session_timeout", "一定時間操作がなかったため、ログアウトしました。再度ログインして下さい。", "You were logged out after a period of inactivity. Please log in again."),
    ("logged_out", "ログアウトしました。", "You have logged out."),
    ("otp_auth_title", "ワンタイムパスワード認証", "One-time password authentication"),
    ("otp_auth_lead", "スマートフォンのワンタイムパスワードアプリに表示されているワンタイムパスワードを入力し、「認証する」ボタンを押して下さい。", "Enter the one-time password shown in the app on your smartphone and press \"Authenticate\"."),
    ("otp_auth_button", "認証する", "Authenticate"),
    // top
    ("top_title", "トップページ", "Top page"),
    ("top_welcome", "ようこそ、{name} 様", "Welcome, {name}"),
    ("top_menu", "メニュー", "Menu"),
    ("top_otp_desc", "トークン発行・利用開始・利用解除", "Issue a token, start or end OTP use"),
    ("top_transfer_desc", "振込・振替のお手続き", "Make a transfer"),
    ("top_otp_status", "ワンタイムパスワード登録状況", "One-time password status"),
    // BOP001
    ("bop001_title", "ワンタイムパスワード申請内容選択", "One-time password: choose an application"),
    ("bop001_lead", "ワンタイムパスワードの登録情報を表示します。\n登録情報の変更を行う場合は変更対象ボタンを押して下さい。", "Your one-time password registration is shown below.\nTo change it, press the button for the change."),
    ("bop001_status_heading", "ワンタイムパスワード登録状況", "One-time password registration"),
    ("bop001_status", "登録状況", "Status"),
    ("bop001_token_heading", "トークン情報", "Token information"),
    ("service_id", "サービスID", "Service ID"),
    ("user_id", "ユーザID", "User ID"),
    ("bop001_notes_heading", "注意事項", "Notes"),
    ("bop001_actions_heading", "登録情報変更処理選択", "Changes"),
    ("status_none", "未発行", "Not issued"),
    ("status_issued", "トークン発行済", "Token issued"),
    ("status_active", "利用中", "In use"),
    ("status_deactivated", "利用解除済", "Deactivated"),
    ("status_locked", "（ロック中）", "(locked)"),
    ("link_issue", "トークン発行", "Issue a token"),
    ("link_activate", "ワンタイムパスワード利用開始", "Start using the one-time password"),
    ("link_deactivate", "ワンタイムパスワード利用解除", "Stop using the one-time password"),
    ("bop001_no_actions", "現在お申込みいただけるお手続きはありません。", "There is nothing to apply for at the moment."),
    ("why_issue_live", "トークンは発行済みです。", "A token has already been issued."),
    ("why_issue_next_day", "本日利用解除したため、トークン発行は翌日以降に行えます。", "OTP use ended today, so a new token can be issued from tomorrow."),
    ("why_activate_setup", "メールのダウンロードURLからアプリをダウンロードし、初期設定を完了してから利用開始して下さい。", "Download the app from the URL in the e-mail and finish its initial setup first."),
    ("otp_locked_title", "ワンタイムパスワードのロック", "One-time password locked"),
    ("otp_locked_what", "誤ったワンタイムパスワードが続けて入力されたため、ワンタイムパスワードがロックされています。ロック中はログインできません。", "Wrong one-time passwords were entered too many times in a row, so the one-time password is locked. You cannot log in while it is locked."),
    ("otp_locked_until", "ロックは{at}に自動的に解除されます。解除後に、あらためてログインして下さい。", "The lock lifts by itself at {at}. Please log in again after that."),
    ("otp_locked_call", "ロックの解除には{we}でのお手続きが必要です。下記までお問い合わせ下さい。", "Only we can lift the lock. Please contact us at the number below."),
    ("otp_locked_contact", "お問い合わせ先", "Contact"),
    ("otp_locked_not_you", "お客様ご自身が入力されていない場合は、第三者にログインIDとログインパスワードを知られたおそれがあります。ログアウトし、お問い合わせ下さい。", "If you did not enter them yourself, someone else may know your login ID and password. Log out and contact us."),
    ("locked_notice", "誤ったワンタイムパスワードが続けて入力されたため、ロックされています。{we}までお問い合わせ下さい。", "The token is locked after repeated wrong one-time passwords. Please contact us."),
    ("notes_what_otp_h", "<ワンタイムパスワードとは>", "<What is a one-time password?>"),
    ("notes_what_otp_1", "「ワンタイムパスワード」とは、1分毎に更新される使い捨てのパスワードで、利用者は携帯電話からワンタイムパスワードを取得し、パソコンに入力します。", "A one-time password is a single-use password that changes every minute; you read it on your phone and enter it on the computer."),
    ("notes_what_otp_2", "接続時に、「ログインID」と「ログインパスワード」に加えて「ワンタイムパスワード」を入力することにより、不正利用の防止を強化することができます。", "Entering it at login on top of your login ID and login password makes misuse much harder."),
    ("notes_token_h", "<トークンとは>", "<What is a token?>"),
    ("notes_token_1", "「トークン」とは、ワンタイムパスワードを生成し携帯電話に表示する方式のことです。", "A token generates one-time passwords and shows them on your phone."),
    ("notes_token_2", "「トークン発行」とは、お客様の携帯電話に「トークン」として利用するための専用プログラムをダウンロードする作業のことです。", "Issuing a token means downloading the app that serves as your token onto your phone."),
    ("notes_deact_h", "<ワンタイムパスワード利用解除とは>", "<What does stopping OTP use mean?>"),
    ("notes_deact_1", "携帯電話の機種変更等で現在のワンタイムパスワードアプリが使用できなくなる場合にワンタイムパスワード利用解除を実施して下さい。", "Stop OTP use when you can no longer use the current app, for example when you change phones."),
    ("notes_deact_2", "次回ログイン時から、「ワンタイムパスワード認証画面」が表示されず、通常のログイン手続きとなります。", "From your next login the one-time password screen is no longer shown."),
    ("notes_deact_3", "翌日以降に、新たに「トークン発行」「ワンタイムパスワード利用開始」を実施してワンタイムパスワードの利用を再開下さい。", "From the next day, issue a new token and start OTP use again."),
    ("notes_important_h", "<重要>", "<Important>"),
    ("notes_important_1", "ご利用可能な携帯電話の機種は、NTTドコモ、au、ソフトバンクモバイルの「携帯アプリ」機能を有する機種となります。", "Phones of NTT docomo, au and SoftBank Mobile with app support can be used."),
    ("notes_important_2", "※一部機種には利用いただけません（場合によって）。", "* Some models cannot be used."),
    // issuance
    ("issue_title_input", "トークン発行（ソフトウェアトークン発行情報入力）", "Token issuance (software token details)"),
    ("issue_title_confirm", "トークン発行（ソフトウェアトークン発行情報入力内容確認）", "Token issuance (confirm the details)"),
    ("issue_title_complete", "トークン発行（ソフトウェアトークン発行完了）", "Token issuance (complete)"),
    ("issue_step_input", "ソフトウェアトークン発行情報入力", "Details"),
    ("issue_step_confirm", "ソフトウェアトークン発行情報入力内容確認", "Confirm"),
    ("issue_step_complete", "ソフトウェアトークン発行完了", "Complete"),
    ("issue_input_lead", "ソフトウェアトークンを発行します。\n送付先メールアドレス、利用開始パスワードを入力し「次へ」ボタンを押して下さい。", "A software token will be issued.\nEnter the e-mail address to send it to and an activation password, then press \"Next\"."),
    ("issue_mail_heading", "送付先メールアドレスの指定", "E-mail address"),
    ("issue_mail_lead", "トークン発行するスマートフォンのメールアドレスを入力して下さい。", "Enter the e-mail address of the smartphone that will hold the token."),
    ("email", "スマートフォンメールアドレス", "Smartphone e-mail address"),
    ("email_hint", "(半角英数字記号)", "(half-width letters, digits, symbols)"),
    ("email2", "スマートフォンメールアドレス (確認用)", "Smartphone e-mail address (again)"),
    ("twice_hint", "確認のため2回入力して下さい", "Enter it twice to confirm"),
    ("issue_pw_heading", "利用開始パスワードの指定", "Activation password"),
    ("issue_pw_lead", "トークン発行時に必要となる利用開始パスワードを4～8桁の数字で登録して下さい。\n利用開始パスワードは、お控えいただくかお忘れにならないようご注意ください。", "Choose an activation password of 4 to 8 digits; the app's setup asks for it.\nKeep it safe and do not forget it."),
    ("activation_password", "利用開始パスワード", "Activation password"),
    ("activation_password2", "利用開始パスワード (確認用)", "Activation password (again)"),
    ("issue_confirm_lead", "入力内容をご確認のうえ、確認用パスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and press \"Confirm\"."),
    ("issue_dest_heading", "送付先メールアドレス", "E-mail address"),
    ("confirm_pw_heading", "確認用パスワードの入力", "Confirmation password"),
    ("confirmation_password", "確認用パスワード", "Confirmation password"),
    ("confirmation_password_hint", "(半角英数字6～12桁)", "(6-12 half-width letters and digits)"),
    ("commit", "確定する", "Confirm"),
    ("issue_complete_lead", "ソフトウェアトークンを発行しました。送付先メールアドレス欄、トークン情報欄の内容をご確認ください。", "The software token has been issued. Please check the e-mail address and token information below."),
    ("issue_next_steps", "本操作完了後、送付先メールアドレスのスマートフォンにてワンタイムパスワードアプリをダウンロードし、初期設定を行っていただきます。メール記載の「ダウンロードURL」を選択し、アプリの初期設定でサービスID・ユーザID・利用開始パスワードを入力して下さい。初期設定の後、「ワンタイムパスワード利用開始」を行って下さい。", "Next, on the smartphone with this e-mail address, open the download URL in the e-mail, install the app and set it up with the service ID, user ID and your activation password. Then start OTP use here."),
    ("to_bop001", "ワンタイムパスワード申請内容選択へ", "To the one-time password menu"),
    ("issue_not_allowed", "現在、トークン発行はできません。", "A token cannot be issued now."),
    // BOK
    ("bok001_title", "ワンタイムパスワード利用開始 (ソフトウェアトークン確認)", "Start OTP use (check the software token)"),
    ("bok001_lead", "ワンタイムパスワードを入力し、「利用開始する」ボタンを押して下さい。", "Enter the one-time password and press \"Start using\"."),
    ("otp_heading", "ワンタイムパスワードの入力", "One-time password"),
    ("code", "ワンタイムパスワード", "One-time password"),
    ("code_hint", "(半角数字)", "(half-width digits)"),
    ("bok001_button", "利用開始する", "Start using"),
    ("bok002_title", "ワンタイムパスワード利用開始 (ソフトウェアトークン完了)", "Start OTP use (complete)"),
    ("bok002_lead", "ワンタイムパスワード利用開始登録を受けました。", "OTP use has been registered."),
    // BOS
    ("bos001_title", "ワンタイムパスワード利用解除（利用解除確認）", "Stop OTP use (confirm)"),
    ("bos_step_confirm", "利用解除確認", "Confirm"),
    ("bos_step_complete", "利用解除完了", "Complete"),
    ("bos001_lead", "確認用パスワード・ワンタイムパスワードを入力し、「解除する」ボタンを押して下さい。", "Enter your confirmation password and the one-time password, then press \"Stop\"."),
    ("bos001_button", "解除する", "Stop"),
    ("bos002_title", "ワンタイムパスワード利用解除（利用解除完了）", "Stop OTP use (complete)"),
    ("bos002_lead", "ワンタイムパスワード利用解除登録を受けました。", "OTP use has been stopped."),
    ("bos002_note", "スマートフォンのアプリからトークンを削除して下さい。次回ログイン時から「ワンタイムパスワード認証画面」は表示されません。", "Delete the token from the app on your phone. The one-time password screen is no longer shown at login."),
    // transfers
    ("transfer_title_input", "振込（振込内容入力）", "Transfer (details)"),
    ("transfer_title_confirm", "振込（振込内容確認）", "Transfer (confirm)"),
    ("transfer_title_done", "振込（振込受付完了）", "Transfer (accepted)"),
    ("transfer_input_lead", "振込先と金額を入力し、「次へ」ボタンを押して下さい。", "Enter the payee and the amount, then press \"Next\"."),
    ("payee", "受取人名", "Payee name"),
    ("payee_hint", "(半角カナ・英大文字・数字、30文字以内　例: ﾔﾏﾀﾞ ﾀﾛｳ)", "(half-width katakana, capital letters and digits, up to 30, e.g. ﾔﾏﾀﾞ ﾀﾛｳ)"),
    ("amount", "振込金額（円）", "Amount (yen)"),
    ("amount_hint", "(半角数字、1円～{max}円)", "(digits, 1 to {max} yen)"),
    ("payee_account", "振込先口座", "Payee account"),
    ("registered_payees", "登録済み振込先", "Registered payees"),
    ("registered_payee", "登録済み振込先から選ぶ", "Choose a registered payee"),
    ("registered_payee_none", "選択しない（下に入力する）", "None (enter below)"),
    ("bank_code", "金融機関コード", "Bank code"),
    ("bank_code_hint", "(半角数字4桁)", "(4 digits)"),
    ("branch_code", "支店コード", "Branch code"),
    ("branch_code_hint", "(半角数字3桁)", "(3 digits)"),
    ("account_type", "預金種目", "Account type"),
    ("account_type_1", "普通", "Ordinary"),
    ("account_type_2", "当座", "Current"),
    ("account_number", "口座番号", "Account number"),
    ("account_number_hint", "(半角数字7桁)", "(7 digits)"),
    ("new_payee_badge", "はじめての振込先", "New payee"),
    ("transfer_confirm_lead_tx", "内容をご確認のうえ、確認用パスワードと取引認証番号を入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and the transaction code, then press \"Confirm\"."),
    ("tx_auth_heading", "取引認証", "Transaction authentication"),
    ("tx_auth_lead", "ソフトウェアトークンアプリの「取引認証」を開き、QRコードを読み取るか、表示された振込内容を入力して下さい。", "Open \"Transaction authentication\" in the soft token app and scan the QR code, or type the transfer details shown here."),
    ("tx_qr_alt", "取引認証用のQRコード", "QR code for transaction authentication"),
    ("tx_qr_caption", "アプリで読み取って下さい", "Scan it with the app"),
    ("tx_typed_lead", "読み取れない場合は、アプリに次の内容を入力して下さい。", "If you cannot scan it, type these into the app."),
    ("tx_check_note", "アプリに表示された振込先口座と金額が、お客様の意図した振込と同じことを必ずご確認下さい。違う場合は取引を中止し、当行へご連絡下さい。", "Check that the payee account and amount the app shows are the transfer you meant. If they differ, stop and contact us."),
    ("tx_code", "取引認証番号", "Transaction code"),
    ("tx_code_hint", "(アプリに表示された8桁の半角数字)", "(the 8 digits the app shows)"),
    ("tx_auth_used", "取引認証で確認済み", "Confirmed with transaction authentication"),
    ("transfer_confirm_lead", "内容をご確認のうえ、確認用パスワードとワンタイムパスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and the one-time password, then press \"Confirm\"."),
    ("transfer_confirm_lead_no_otp", "内容をご確認のうえ、確認用パスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password, then press \"Confirm\"."),
    ("transfer_done_lead", "振込を受け付けました。", "The transfer has been accepted."),
    ("transfer_number", "受付番号", "Reference number"),
    ("yen", "円", " yen"),
    // download page
    ("dl_title", "ワンタイムパスワードアプリのダウンロード", "Download the one-time password app"),
    ("dl_lead", "ダウンロードサイトをタップしてください。端末の種類に応じてApp StoreまたはGoogle Playからワンタイムパスワードアプリをダウンロードしてください。", "Tap a download site. Download the one-time password app from the App Store or Google Play, depending on your phone."),
    ("dl_app_store", "App Storeからダウンロード", "Download on the App Store"),
    ("dl_play", "Google Playで手に入れよう", "Get it on Google Play"),
    ("dl_open_app", "インストール済みのアプリで初期設定を開始する", "Start the setup in the installed app"),
    ("dl_ids", "アプリの初期設定では、次のサービスID・ユーザIDと、トークン発行時に登録した利用開始パスワードを入力します。", "The app's setup asks for this service ID and user ID, and the activation password you chose when issuing the token."),
    ("dl_invalid_title", "ダウンロードURLが無効です", "This download link is not valid"),
    ("dl_unknown", "このダウンロードURLは無効です。メールに記載のURLをご確認ください。", "This download link is not valid. Please check the URL in the e-mail."),
    ("dl_expired", "このダウンロードURLは有効期限が切れています。お手数ですが、インターネットバンキングから再度トークン発行を行ってください。", "This download link has expired. Please issue a token again in internet banking."),
    ("dl_unusable", "このトークンは利用解除済みのため、ダウンロードURLは使用できません。", "This token has been deactivated, so the link can no longer be used."),
    // errors
    ("error_title", "エラー", "Error"),
    ("error_csrf", "画面の有効期限が切れたか、不正な操作が行われました。もう一度操作して下さい。", "This page has expired or the request was not valid. Please try again."),
    ("error_internal", "ただいま処理を行えません。しばらくしてから再度お試し下さい。お問い合わせの際は次の番号をお伝え下さい：", "The request cannot be processed now. Please try again later. When contacting us, quote this number: "),
    ("error_unavailable", "ただいま混み合っております。しばらくしてから再度お試し下さい。", "The service is busy. Please try again shortly."),
    ("error_not_found", "お探しのページは見つかりませんでした。アドレスをご確認のうえ、トップページからお進み下さい。", "The page you asked for was not found. Please check the address, or start again from the top page."),
    ("error_method", "この操作は受け付けられません。トップページからもう一度操作して下さい。", "This request cannot be accepted. Please start again from the top page."),
    ("error_unreadable", "送信された内容を読み取れませんでした。入力内容をご確認のうえ、もう一度操作して下さい。", "What was sent could not be read. Please check it and try again."),
    ("error_timeout", "処理に時間がかかったため、中断しました。しばらくしてから再度お試し下さい。", "The request took too long and was stopped. Please try again shortly."),
    ("error_too_large", "送信された内容が大きすぎます。入力内容を短くして、もう一度操作して下さい。", "What was sent is too large. Please shorten the input and try again."),
    ("error_bad_text", "入力内容に使用できない文字（制御文字など）が含まれているか、入力が長すぎます。入力内容をご確認のうえ、もう一度操作して下さい。", "The input contains characters that cannot be used (such as control characters), or is too long. Please check it and try again."),
    ("not_found", "ページが見つかりません。", "Page not found."),
    ("err_required", "入力して下さい。", "This field is required."),
    ("err_email", "メールアドレスの形式が正しくありません（半角英数字記号で入力して下さい）。", "This is not a valid e-mail address (half-width characters)."),
    ("err_email_mismatch", "スマートフォンメールアドレス (確認用) が一致しません。", "The two e-mail addresses do not match."),
    ("err_activation_password", "利用開始パスワードは4～8桁の半角数字で入力して下さい。", "The activation password must be 4 to 8 half-width digits."),
    ("err_activation_mismatch", "利用開始パスワード (確認用) が一致しません。", "The two activation passwords do not match."),
    ("err_confirmation_format", "確認用パスワードは半角英数字6～12桁で入力して下さい。", "The confirmation password must be 6 to 12 half-width letters and digits."),
    ("err_confirmation_wrong", "確認用パスワードが正しくありません。", "The confirmation password is incorrect."),
    ("err_confirmation_locked", "パスワードの誤入力が所定の回数に達したため、お取引を停止しています。約{n}分後に再度お試し下さい。", "Too many wrong passwords were entered, so this is stopped. Please try again in about {n} minutes."),
    ("err_code_format", "ワンタイムパスワードは半角数字6桁で入力して下さい。", "The one-time password must be 6 half-width digits."),
    ("err_code_invalid", "ワンタイムパスワードが正しくありません。残り{n}回誤るとロックされます。", "The one-time password is incorrect. {n} more failures will lock it."),
    ("err_code_replayed", "このワンタイムパスワードは使用済みです。アプリに次のワンタイムパスワードが表示されてから入力して下さい。", "This one-time password has already been used. Wait for the next one in the app."),
    ("err_code_locked", "ワンタイムパスワードがロックされています。{we}までお問い合わせ下さい。", "The one-time password is locked. Please contact us."),
    ("err_code_not_active", "ワンタイムパスワードの状態が変わりました。申請内容選択画面からやり直して下さい。", "The token's status has changed. Please start again from the menu."),
    ("err_payee", "受取人名は半角カナ・英大文字・数字・スペースと ( ) . , - / で、30文字以内で入力して下さい（小さい「ｬ」などは大きい文字で、長音は「-」で入力して下さい）。", "Enter the payee name in half-width katakana, capital letters, digits, spaces and ( ) . , - /, up to 30 characters (small kana as large ones, the long-vowel mark as -)."),
    ("err_amount", "振込金額は1～{max}の半角数字で入力して下さい。", "The amount must be 1 to {max}, in half-width digits."),
    ("err_daily_limit", "1日のお振込限度額（{limit}円）を超えます。本日はあと{left}円までお振込いただけます。", "This passes the daily limit of {limit} yen. You can transfer up to {left} yen more today."),
    ("err_bank_code", "金融機関コードは4桁の半角数字で入力して下さい。", "The bank code must be 4 digits."),
    ("err_branch_code", "支店コードは3桁の半角数字で入力して下さい。", "The branch code must be 3 digits."),
    ("err_account_type", "預金種目は「普通」か「当座」を選択して下さい。", "Choose ordinary or current as the account type."),
    ("err_account_number", "口座番号は7桁の半角数字で入力して下さい。", "The account number must be 7 digits."),
    ("err_tx_code_invalid", "取引認証番号が正しくありません。アプリに表示された振込先口座と金額が、この画面の内容と同じかご確認下さい。残り{n}回誤るとロックされます。", "The transaction code is incorrect. Check that the payee account and amount in the app are the ones on this screen. {n} more failures will lock it."),
    ("err_tx_code_replayed", "この取引認証番号は使用済みです。アプリに次の取引認証番号が表示されてから入力して下さい。", "This transaction code has already been used. Wait for the next one in the app."),
    ("err_tx_code_format", "取引認証番号は8桁の半角数字で入力して下さい。", "The transaction code must be 8 digits."),
    ("err_login_id", "ログインIDを入力して下さい。", "Enter your login ID."),
    ("err_login_password", "ログインパスワードを入力して下さい。", "Enter your login password."),
    // メール通知パスワード (issue 19)
    ("mail_password_heading", "メール通知パスワードの入力", "Mailed password"),
    ("mail_password", "メール通知パスワード", "Mailed password"),
    ("mail_password_hint", "(数字8桁)", "(8 digits)"),
    ("mail_password_sent_to", "ご登録のメールアドレス（{to}）へメール通知パスワードを送信しました。メールに記載のお手続き内容をご確認のうえ入力して下さい。有効期限は送信から10分間で、ログアウトすると無効になります。", "A mailed password was sent to your registered e-mail address ({to}). Check the details in the e-mail, then enter it. It is valid for 10 minutes and ends when you log out."),
    ("mail_password_resend", "メール通知パスワードを再送信する", "Send the mailed password again"),
    ("mail_password_resent", "メール通知パスワードを再送信しました。新しいメール通知パスワードを入力して下さい。", "A new mailed password was sent. Enter the new one."),
    ("mail_password_resend_limit", "再送信できる回数を超えました。お手数ですが、最初からお手続きをやり直して下さい。", "It cannot be sent again. Please start the procedure again."),
    ("err_mail_password_format", "メール通知パスワードは数字8桁で入力して下さい。", "The mailed password must be 8 digits."),
    ("err_mail_password_wrong", "メール通知パスワードが正しくありません。", "The mailed password is incorrect."),
    ("err_mail_password_gone", "メール通知パスワードの有効期限が切れたか、使用済みです。「メール通知パスワードを再送信する」ボタンを押して下さい。", "The mailed password has expired or was already used. Press \"Send the mailed password again\"."),
    ("err_mail_no_address", "メール通知パスワードの送付先となるメールアドレスが登録されていないため、このお手続きはできません。{we}までお問い合わせ下さい。", "No e-mail address is registered to send the mailed password to, so this cannot be done. Please contact us."),
    ("issue_confirm_lead_mail", "入力内容をご確認のうえ、確認用パスワードと、ご登録のメールアドレスに送信したメール通知パスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and the mailed password sent to your registered e-mail address, then press \"Confirm\"."),
    ("transfer_confirm_lead_mail", "はじめてのお振込先です。内容をご確認のうえ、確認用パスワードと、ご登録のメールアドレスに送信したメール通知パスワードを入力し、「確定する」ボタンを押して下さい。", "This payee is new. Check the details, enter your confirmation password and the mailed password sent to your registered e-mail address, then press \"Confirm\"."),
    ("nav_email", "メールアドレス変更", "E-mail address"),
    ("top_email_desc", "ご登録のメールアドレスの変更", "Change your registered e-mail address"),
    ("email_change_title_input", "登録メールアドレス変更（変更内容入力）", "Change the registered e-mail address (details)"),
    ("email_change_title_confirm", "登録メールアドレス変更（変更内容確認）", "Change the registered e-mail address (confirm)"),
    ("email_change_title_done", "登録メールアドレス変更（変更完了）", "Change the registered e-mail address (complete)"),
    ("email_change_input_lead", "新しいメールアドレスを入力し、「次へ」ボタンを押して下さい。", "Enter the new e-mail address, then press \"Next\"."),
    ("email_change_current", "現在の登録メールアドレス", "Registered e-mail address"),
    ("email_change_none", "（未登録）", "(none)"),
    ("email_change_new", "新しいメールアドレス", "New e-mail address"),
    ("registered_email", "登録メールアドレス", "Registered e-mail address"),
    ("registered_email_new", "新しいメールアドレス", "New e-mail address"),
    ("registered_email_new2", "新しいメールアドレス (確認用)", "New e-mail address (again)"),
    ("err_registered_email_mismatch", "新しいメールアドレス (確認用) が一致しません。", "The two e-mail addresses do not match."),
    ("email_change_confirm_lead_mail", "内容をご確認のうえ、確認用パスワードと、現在の登録メールアドレスに送信したメール通知パスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and the mailed password sent to your current registered address, then press \"Confirm\"."),
    ("email_change_confirm_lead_otp", "内容をご確認のうえ、確認用パスワードとワンタイムパスワードを入力し、「確定する」ボタンを押して下さい。", "Check the details, enter your confirmation password and the one-time password, then press \"Confirm\"."),
    ("email_change_done_lead", "登録メールアドレスを変更しました。変更前のメールアドレスにもお知らせを送信しました。", "The registered e-mail address has been changed. A notice was sent to the previous address too."),
];

/// The catalogue for one language.
pub fn catalogue(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    MESSAGES
        .iter()
        .map(|(k, ja, en)| (*k, if lang == Lang::Ja { *ja } else { *en }))
        .collect()
}

/// One message.
pub fn msg(lang: Lang, key: &str) -> String {
    MESSAGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, ja, en)| if lang == Lang::Ja { *ja } else { *en })
        .unwrap_or(key)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_both_languages_filled() {
        let mut seen = std::collections::HashSet::new();
        for (k, ja, en) in MESSAGES {
            assert!(seen.insert(*k), "duplicate message key {k}");
            assert!(!ja.is_empty() && !en.is_empty(), "{k} needs both languages");
        }
    }
}
