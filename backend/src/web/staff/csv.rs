//! The audit trail as CSV (RFC 4180), safe to open in a spreadsheet: every cell is quoted, and
//! a cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) gets a leading apostrophe, so it is shown as text and never evaluated
//! (OWASP "CSV injection").

use crate::store::AuditRow;

/// One cell, quoted and defused.
pub fn cell(v: &str) -> String {
    let defused = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// The header line and one line per event, CRLF-terminated; `when` formats a unix time.
pub fn audit_csv(rows: &[AuditRow], when: impl Fn(i64) -> String) -> String {
    let mut out = String::from(
        "\"id\",\"at\",\"actor\",\"user_id\",\"action\",\"outcome\",\"ip\",\"detail\"\r\n",
    );
    for r in rows {
        let cells = [
            r.id.to_string(),
            when(r.at),
            r.actor.clone(),
            r.user_id.clone().unwrap_or_default(),
            r.action.clone(),
            r.outcome.clone(),
            r.ip.clone().unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quotes_doubled() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "\"'+1\"");
        assert_eq!(cell("-1+2"), "\"'-1+2\"");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(cell("\tx"), "\"'\tx\"");
        assert_eq!(cell("staff:3"), "\"staff:3\"");
        assert_eq!(
            cell("a,b\r\nc"),
            "\"a,b\r\nc\"",
            "separators stay inside the quotes"
        );
    }
}
