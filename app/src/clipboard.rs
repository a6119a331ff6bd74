//! Clipboard hygiene for copied codes (issue 17, item 4): the shell copies a code, waits
//! [`CLEAR_AFTER`], and clears the clipboard only if it still holds that code, so whatever the
//! customer copied since is left alone.

use std::time::Duration;

use subtle::ConstantTimeEq as _;

/// How long a copied code stays on the clipboard.
pub const CLEAR_AFTER: Duration = Duration::from_secs(30);

/// Whether the clipboard's `current` text is still the `copied` code (constant-time).
pub fn still_holds(current: Option<&str>, copied: &str) -> bool {
    current.is_some_and(|c| {
        c.len() == copied.len() && bool::from(c.as_bytes().ct_eq(copied.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_code_is_cleared() {
        assert!(still_holds(Some("123456"), "123456"));
        assert!(!still_holds(Some("123457"), "123456"), "a newer code");
        assert!(
            !still_holds(Some("a shopping list"), "123456"),
            "something else the customer copied"
        );
        assert!(!still_holds(Some(""), "123456"));
        assert!(
            !still_holds(None, "123456"),
            "unreadable or empty clipboard"
        );
        assert_eq!(CLEAR_AFTER, Duration::from_secs(30));
    }
}
