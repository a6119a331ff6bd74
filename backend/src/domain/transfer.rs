//! The reference a transfer (振込) is given, as the customer sees it on the done screen and
//! staff see it in the customer's timeline: the Asia/Tokyo date of the transfer and six random
//! characters, `20261126-7F3K9Q`. The random part uses an alphabet without look-alikes (no 0,
//! O, 1 or I), so it can be read out over the phone; the caller draws it from the OS RNG and
//! the database keeps it unique (a collision is drawn again).

use rand::Rng;

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

#[cfg(test)]
mod tests {
    use super::*;

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
