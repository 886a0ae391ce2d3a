//! Exact decimal parsing for clinical measurements.
//!
//! Observations arrive as text: typed by a nurse, or carried as JSON numbers
//! whose text is kept exactly as written. Scoring thresholds such as
//! "35.0 °C scores 3, 35.1 °C scores 1" must not depend on binary
//! floating-point error, so values are parsed from their decimal text straight
//! into scaled integers (for example tenths of a degree) without ever passing
//! through `f64`.

/// Why a piece of text could not be read as a decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// The text is not a decimal number (letters, empty text, stray symbols).
    NotANumber,
    /// The number is far too large (or has an absurd exponent) to be a
    /// measurement.
    TooLarge,
}

/// Largest exponent magnitude accepted in `1.5e3` style input; anything larger
/// cannot be a bedside measurement.
const MAX_EXPONENT: i64 = 400;

/// Most significant digits kept in an `i64` without overflow.
const MAX_DIGITS: usize = 18;

/// Parses decimal `text` and rounds it to `places` decimal places, returning
/// the value multiplied by `10^places` and whether the rounding was exact.
///
/// Rounding is half away from zero on the exact decimal value: with
/// `places = 1`, `"35.05"` becomes `351` (35.1) and `"35.04"` becomes `350`
/// (35.0). Leading `+`/`-`, surrounding whitespace and an exponent
/// (`"3.71e1"`) are accepted, as in JSON.
pub(crate) fn parse_scaled(text: &str, places: u32) -> Result<(i64, bool), DecimalError> {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], parse_exponent(&unsigned[at + 1..])?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DecimalError::NotANumber);
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::NotANumber);
    }

    // value = digits × 10^(exponent − frac_len); leading zeros carry no value.
    let all_digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .skip_while(|&d| d == 0)
        .collect();
    if all_digits.is_empty() {
        return Ok((0, true));
    }
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| DecimalError::TooLarge)?;
    let shift = exponent - frac_len + i64::from(places);

    let (magnitude, exact) = if shift >= 0 {
        let shift = usize::try_from(shift).map_err(|_| DecimalError::TooLarge)?;
        if all_digits.len() + shift > MAX_DIGITS {
            return Err(DecimalError::TooLarge);
        }
        let mut value = digits_value(&all_digits)?;
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or(DecimalError::TooLarge)?;
        }
        (value, true)
    } else {
        let drop = usize::try_from(-shift).map_err(|_| DecimalError::TooLarge)?;
        if drop > all_digits.len() {
            // Every significant digit lies below half a unit of the last kept
            // place, so the value rounds to zero (and is not exact, since the
            // digits are not all zero).
            (0, false)
        } else {
            let keep = all_digits.len() - drop;
            if keep > MAX_DIGITS {
                return Err(DecimalError::TooLarge);
            }
            let kept = digits_value(&all_digits[..keep])?;
            let dropped = &all_digits[keep..];
            let exact = dropped.iter().all(|&d| d == 0);
            let round_up = dropped.first().is_some_and(|&d| d >= 5);
            let value = if round_up {
                kept.checked_add(1).ok_or(DecimalError::TooLarge)?
            } else {
                kept
            };
            (value, exact)
        }
    };
    Ok((if negative { -magnitude } else { magnitude }, exact))
}

fn parse_exponent(text: &str) -> Result<i64, DecimalError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotANumber);
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 4 {
        return Err(DecimalError::TooLarge);
    }
    let magnitude: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| DecimalError::NotANumber)?
    };
    if magnitude > MAX_EXPONENT {
        return Err(DecimalError::TooLarge);
    }
    Ok(if negative { -magnitude } else { magnitude })
}

fn digits_value(digits: &[u8]) -> Result<i64, DecimalError> {
    digits.iter().try_fold(0i64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d)))
            .ok_or(DecimalError::TooLarge)
    })
}

/// Divides `numerator` by a positive `denominator`, rounding half away from
/// zero.
pub(crate) fn div_round(numerator: i64, denominator: i64) -> i64 {
    if denominator <= 0 {
        return 0;
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.unsigned_abs().saturating_mul(2) >= denominator.unsigned_abs() {
        quotient + numerator.signum()
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero_on_the_exact_text() {
        assert_eq!(parse_scaled("35.05", 1), Ok((351, false)));
        assert_eq!(parse_scaled("35.04999", 1), Ok((350, false)));
        assert_eq!(parse_scaled("35.0", 1), Ok((350, true)));
        assert_eq!(parse_scaled("35", 1), Ok((350, true)));
        assert_eq!(parse_scaled("-1.25", 1), Ok((-13, false)));
        assert_eq!(parse_scaled("3.705e1", 1), Ok((371, false)));
        assert_eq!(parse_scaled("3705E-2", 1), Ok((371, false)));
        assert_eq!(parse_scaled(".5", 0), Ok((1, false)));
        assert_eq!(parse_scaled("5.", 0), Ok((5, true)));
        assert_eq!(parse_scaled("0.000", 0), Ok((0, true)));
        assert_eq!(parse_scaled("0.0001", 0), Ok((0, false)));
        assert_eq!(parse_scaled("1e-400", 1), Ok((0, false)));
        assert_eq!(parse_scaled(" 18 ", 0), Ok((18, true)));
    }

    #[test]
    fn rejects_non_numbers_and_absurd_sizes() {
        for text in [
            "", "-", ".", "abc", "1.2.3", "1e", "1e+", "0x10", "١٢", "--1", "1 2",
        ] {
            assert_eq!(
                parse_scaled(text, 1),
                Err(DecimalError::NotANumber),
                "{text:?}"
            );
        }
        for text in ["1e401", "99999999999999999999", "1e99999"] {
            assert_eq!(
                parse_scaled(text, 1),
                Err(DecimalError::TooLarge),
                "{text:?}"
            );
        }
    }

    #[test]
    fn div_round_is_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(-4, 10), 0);
        assert_eq!(div_round(7, 0), 0);
    }
}
