//! NHS numbers: validation and a collision-free generator.
//!
//! An NHS number is ten digits; the tenth is a modulus-11 check digit over the
//! first nine (weights 10 down to 2): `check = 11 - (sum mod 11)`, where a
//! result of 11 becomes 0 and a result of 10 means the nine digits can never
//! form a valid number.
//!
//! Generated numbers start with `999`, the range the NHS keeps for test and
//! training data, so a demo record can never carry a real person's number.

/// How many distinct NHS numbers [`nhs_number`] can produce (and so the
/// largest region the demo can generate).
pub const NHS_NUMBER_CAPACITY: usize = 900_000;

/// Computes the check digit for nine leading digits, or `None` when no check
/// digit exists (the modulus gives 10) or the input is not nine ASCII digits.
pub fn nhs_check_digit(first_nine: &str) -> Option<u8> {
    let bytes = first_nine.as_bytes();
    if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip((2..=10u32).rev())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        check => u8::try_from(check).ok(),
    }
}

/// Whether `value` is a valid NHS number: exactly ten ASCII digits (no
/// spaces) whose last digit is the modulus-11 check digit of the first nine.
pub fn nhs_number_is_valid(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let (first_nine, last) = value.split_at(9);
    match (nhs_check_digit(first_nine), last.as_bytes().first()) {
        (Some(check), Some(&digit)) => check == digit - b'0',
        _ => false,
    }
}

/// The NHS number of patient `index` in a region generated with `seed`.
///
/// Different indices of the same seed always give different numbers, every
/// number is valid and starts with `999`, and the order looks random. Returns
/// `None` when `index >= NHS_NUMBER_CAPACITY`.
pub fn nhs_number(seed: u64, index: usize) -> Option<String> {
    let capacity = NHS_NUMBER_CAPACITY as u64;
    let index = u64::try_from(index).ok().filter(|i| *i < capacity)?;
    // An affine map i -> (a*i + c) mod N is a bijection on [0, N) whenever a
    // is coprime to N (= 2^5 * 3^2 * 5^5); derive a and c from the seed.
    let mixed = splitmix64(seed);
    let mut multiplier = (mixed % capacity) | 1;
    while multiplier % 3 == 0 || multiplier % 5 == 0 {
        multiplier += 2;
    }
    let offset = splitmix64(mixed) % capacity;
    let slot =
        (u128::from(multiplier) * u128::from(index) + u128::from(offset)) % u128::from(capacity);
    let slot = u64::try_from(slot).ok()?;
    let block = slot / 9;
    let position = slot % 9;
    // Within a block the ninth digit takes ten values, at most one of which
    // has no check digit: the `position`-th usable one is always there.
    let mut usable = 0;
    for ninth in 0..10u64 {
        let first_nine = format!("999{block:05}{ninth}");
        if let Some(check) = nhs_check_digit(&first_nine) {
            if usable == position {
                return Some(format!("{first_nine}{check}"));
            }
            usable += 1;
        }
    }
    None
}

/// Formats an NHS number for people to read: `999 123 4567`.
pub fn format_nhs_number(value: &str) -> String {
    if value.len() == 10 && value.is_ascii() {
        format!("{} {} {}", &value[..3], &value[3..6], &value[6..])
    } else {
        value.to_owned()
    }
}

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash.
pub(crate) fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        // Published example numbers.
        assert!(nhs_number_is_valid("9434765919"));
        assert!(nhs_number_is_valid("4010232137"));
        assert!(!nhs_number_is_valid("9434765918"));
        assert!(!nhs_number_is_valid("943476591"));
        assert!(!nhs_number_is_valid("943 476 5919"));
        assert!(!nhs_number_is_valid("94347659190"));
        assert!(!nhs_number_is_valid("943476591a"));
        assert!(!nhs_number_is_valid(""));
    }

    #[test]
    fn check_digit_ten_is_invalid() {
        // 999000001x: weights give a sum whose remainder leaves 10 for some
        // ninth digit in every block of ten; find one and check it is refused.
        let mut refused = 0;
        for ninth in 0..10 {
            let first_nine = format!("99900000{ninth}");
            match nhs_check_digit(&first_nine) {
                None => {
                    refused += 1;
                    for last in 0..10 {
                        assert!(!nhs_number_is_valid(&format!("{first_nine}{last}")));
                    }
                }
                Some(check) => assert!(nhs_number_is_valid(&format!("{first_nine}{check}"))),
            }
        }
        assert!(refused <= 1);
    }

    #[test]
    fn check_digit_eleven_becomes_zero() {
        // Search for nine digits whose remainder is 0, and check the 0 digit.
        let first_nine = (0..10)
            .map(|ninth| format!("99912345{ninth}"))
            .find(|nine| {
                let sum: u32 = nine
                    .bytes()
                    .zip((2..=10u32).rev())
                    .map(|(d, w)| u32::from(d - b'0') * w)
                    .sum();
                sum % 11 == 0
            });
        if let Some(nine) = first_nine {
            assert_eq!(nhs_check_digit(&nine), Some(0));
        }
    }

    #[test]
    fn generated_numbers_are_valid_and_test_range() {
        for index in [0, 1, 2, 8, 9, 10, 12_345, NHS_NUMBER_CAPACITY - 1] {
            let number = nhs_number(7, index).unwrap_or_default();
            assert!(nhs_number_is_valid(&number), "{number}");
            assert!(number.starts_with("999"));
        }
        assert_eq!(nhs_number(7, NHS_NUMBER_CAPACITY), None);
    }

    #[test]
    fn generated_numbers_depend_on_seed() {
        assert_ne!(nhs_number(1, 0), nhs_number(2, 0));
        assert_eq!(nhs_number(1, 5), nhs_number(1, 5));
    }

    #[test]
    fn formatting() {
        assert_eq!(format_nhs_number("9991234567"), "999 123 4567");
        assert_eq!(format_nhs_number("12"), "12");
    }
}
