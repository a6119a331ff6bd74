//! A mail as the customer reads it: headers and the text body with its transfer encoding
//! undone (lettre writes Japanese bodies as base64 or quoted-printable and subjects as RFC 2047
//! encoded words), by `mail-parser` rather than by hand.

/// A received mail, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The `To` header as written.
    pub to: String,
    /// The subject, decoded.
    pub subject: String,
    /// The first text body, decoded, with `\n` line ends.
    pub body: String,
    /// The `Message-ID` header as written (with its angle brackets).
    pub message_id: String,
}

/// Decodes a raw mail (an `.eml` file, a maildir entry).
pub fn parse_mail(raw: &str) -> Mail {
    let msg = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a mail that parses");
    let header = |name: &str| -> String {
        raw.replace("\r\n", "\n")
            .split("\n\n")
            .next()
            .unwrap_or("")
            .replace("\n ", " ")
            .replace("\n\t", " ")
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    Mail {
        to: header("To"),
        subject: msg.subject().unwrap_or("").to_owned(),
        body: msg
            .body_text(0)
            .map(|b| b.replace("\r\n", "\n"))
            .unwrap_or_default(),
        message_id: header("Message-ID"),
    }
}

/// The text body of a raw mail.
pub fn mail_body_text(raw: &str) -> String {
    parse_mail(raw).body
}

/// The メール通知パスワード in a mail's text: the line after its heading.
pub fn mailed_password_in(body: &str) -> Option<String> {
    let mut lines = body.lines();
    lines
        .by_ref()
        .find(|l| l.contains("■メール通知パスワード"))?;
    lines.next().map(|l| l.trim().to_owned())
}

/// The download URL in an issuance mail.
pub fn download_url(mail: &Mail) -> String {
    mail.body
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/dl/"))
        .expect("a download URL in the mail")
        .to_owned()
}

/// The whole mails in a folder, raw, oldest first: the `.eml` files of the file outbox, or the
/// entries of the loopback SMTP server's maildir. A mail still being written (the outbox writes
/// `<id>.eml.part`, then renames it) is not one of them.
pub fn mails_in_folder(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let t = e.metadata().and_then(|m| m.modified()).ok();
                    (t, e.path())
                })
                .filter(|(_, p)| p.is_file() && !is_partial(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
        .collect()
}

fn is_partial(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "part")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_being_written_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("2.eml.part"), "Subject: half").unwrap();
        std::fs::write(dir.path().join("1.eml"), "Subject: whole\r\n\r\nbody\r\n").unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let mails = mails_in_folder(dir.path());
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert_eq!(parse_mail(&mails[0]).subject, "whole");
        std::fs::rename(dir.path().join("2.eml.part"), dir.path().join("2.eml")).unwrap();
        assert_eq!(mails_in_folder(dir.path()).len(), 2);
        assert!(mails_in_folder(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn base64_and_quoted_printable_bodies_and_encoded_subjects() {
        let b64 = "To: taro@example.jp\r\nSubject: =?utf-8?b?44OI44O844Kv44Oz55m66KGM?=\r\n\
            Message-ID: <outbox-1-2@bank.example>\r\nMIME-Version: 1.0\r\n\
            Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            4pag44Oh44O844Or6YCa55+l44OR44K544Ov44O844OJCjEyMzQ1Njc4Cg==\r\n";
        let m = parse_mail(b64);
        assert_eq!(m.to, "taro@example.jp");
        assert_eq!(m.subject, "トークン発行");
        assert_eq!(m.message_id, "<outbox-1-2@bank.example>");
        assert_eq!(mailed_password_in(&m.body).as_deref(), Some("12345678"));
        let qp = "To: a@example.jp\nSubject: plain\nContent-Type: text/plain; charset=utf-8\n\
            Content-Transfer-Encoding: quoted-printable\n\n\
            =E3=83=80=E3=82=A6=E3=83=B3=E3=83=AD=E3=83=BC=E3=83=89=\n\n  https://ib.example/dl/Ab3\n";
        let m = parse_mail(qp);
        assert!(m.body.starts_with("ダウンロード\n"), "{:?}", m.body);
        assert_eq!(download_url(&m), "https://ib.example/dl/Ab3");
        assert_eq!(mail_body_text(qp), m.body);
        // Without MIME headers, and soft line breaks inside a URL.
        let url = "http://127.0.0.1:8080/dl/0123456789abcdef0123456789abcdef01234567";
        let plain = format!("Subject: x\r\n\r\nダウンロード\r\n{url}\r\n");
        assert!(mail_body_text(&plain).contains(url));
        let qp = "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E3=83=80 http://127.0.0.1:8080/dl/0123456789abcdef0123=\r\n456789abcdef01234567\r\n";
        let text = mail_body_text(qp);
        assert!(text.contains(url) && text.contains('ダ'), "{text}");
        let b64 = "Content-Transfer-Encoding: base64\r\n\r\nb2sgaHR0cDovLzEyNy4wLjAu\r\nMTo4MDgwL2RsL2Fi\r\n";
        assert_eq!(mail_body_text(b64), "ok http://127.0.0.1:8080/dl/ab");
    }
}
