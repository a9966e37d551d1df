//! Exact decimal amounts and quantities, and the credit types they are counted in.
//! Never floats: values arrive as decimal strings and stay `rust_decimal::Decimal`.

use rust_decimal::{Decimal, RoundingStrategy};

use super::validation::Violations;

/// Credit type used when a caller names none.
pub const DEFAULT_CREDIT_TYPE: &str = "USD";

/// Largest magnitude accepted for any amount or quantity: far above any real bill, far
/// below where sums of many of them could overflow a `Decimal`.
pub fn max_magnitude() -> Decimal {
    Decimal::from(1_000_000_000_000_000_i64)
}

/// Most digits after the decimal point accepted.
pub const MAX_SCALE: u32 = 12;

/// Parses a decimal string such as "12.50"; records why when it is not one.
pub fn parse_decimal(v: &mut Violations, field: &str, s: &str) -> Option<Decimal> {
    if s.is_empty() {
        v.add(field, "is required (a decimal string such as \"12.50\")");
        return None;
    }
    if s.len() > 64 || s.contains(['e', 'E', '_']) {
        v.add(field, "must be a plain decimal string such as \"12.50\"");
        return None;
    }
    let Ok(d) = Decimal::from_str_exact(s) else {
        v.add(field, "must be a decimal string such as \"12.50\"");
        return None;
    };
    if d.abs() > max_magnitude() {
        v.add(field, "is too large (at most 10^15 in magnitude)");
        return None;
    }
    if d.scale() > MAX_SCALE {
        v.add(field, format!("has more than {MAX_SCALE} decimal places"));
        return None;
    }
    Some(d.normalize())
}

/// Parses an optional decimal: `None` when absent.
pub fn parse_optional_decimal(v: &mut Violations, field: &str, s: Option<&str>) -> Option<Decimal> {
    s.and_then(|s| parse_decimal(v, field, s))
}

/// Records a violation unless `d` is above zero.
pub fn check_positive(v: &mut Violations, field: &str, d: Decimal) {
    if d <= Decimal::ZERO {
        v.add(field, "must be greater than zero");
    }
}

/// Records a violation when `d` is below zero.
pub fn check_non_negative(v: &mut Violations, field: &str, d: Decimal) {
    if d < Decimal::ZERO {
        v.add(field, "must not be negative");
    }
}

/// A credit type: an ISO 4217 currency code or a custom credit type name, compared
/// case-insensitively and kept upper-case (`"usd"` is `"USD"`); empty means USD.
/// Amounts of a credit type are in its major unit (dollars, not cents).
pub fn parse_credit_type(v: &mut Violations, field: &str, s: &str) -> String {
    if s.is_empty() {
        return DEFAULT_CREDIT_TYPE.to_owned();
    }
    if !is_credit_type_code(s) {
        v.add(field, "must be 1 to 64 letters, digits, '_' or '-' (e.g. \"USD\")");
    }
    s.to_ascii_uppercase()
}

/// Whether `s` has the form of a credit type: 1 to 64 letters, digits, '_' or '-'.
pub fn is_credit_type_code(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `d` rounded to the cent, halves away from zero.
pub fn round_to_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Renders a decimal for the wire without trailing zeros beyond what it carries.
pub fn format_decimal(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Serde for decimals in JSON documents: written as strings, read only from strings that
/// [`parse_decimal`] accepts (never from JSON numbers, which would pass through floats).
pub mod exact {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Violations, format_decimal, parse_decimal};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_decimal(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(d)?;
        let mut v = Violations::default();
        parse_decimal(&mut v, "", &text).ok_or_else(|| {
            serde::de::Error::custom(v.items().first().map_or("is not a decimal", |i| i.description.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Decimal, Violations> {
        let mut v = Violations::default();
        let d = parse_decimal(&mut v, "x", s);
        v.finish(d.unwrap_or_default())
    }

    #[test]
    fn plain_decimals_parse_exactly() {
        assert_eq!(parse("12.50").unwrap(), Decimal::new(125, 1));
        assert_eq!(parse("-0.000000000001").unwrap(), Decimal::new(-1, 12));
        assert_eq!(parse("0.1").unwrap() + parse("0.2").unwrap(), parse("0.3").unwrap());
    }

    #[test]
    fn floats_exponents_and_garbage_are_rejected() {
        for bad in ["", "1e5", "abc", "NaN", "inf", "1,5", "1.2.3", "0x10"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn underscores_and_over_long_strings_are_rejected_before_parsing() {
        // rust_decimal itself would read "1_000" as 1000.
        assert!(parse("1_000").is_err());
        let at_the_limit = format!("{}1.5", "0".repeat(61));
        assert_eq!(at_the_limit.len(), 64);
        assert_eq!(parse(&at_the_limit).unwrap(), Decimal::new(15, 1), "64 characters are accepted");
        assert!(parse(&format!("0{at_the_limit}")).is_err(), "65 are not");
    }

    #[test]
    fn an_optional_decimal_is_parsed_when_present() {
        let mut v = Violations::default();
        assert_eq!(parse_optional_decimal(&mut v, "x", Some("2.50")), Some(Decimal::new(25, 1)));
        assert_eq!(parse_optional_decimal(&mut v, "x", None), None);
        assert!(v.is_empty());
    }

    #[test]
    fn zero_is_non_negative_but_not_positive() {
        let mut v = Violations::default();
        check_non_negative(&mut v, "a", Decimal::ZERO);
        assert!(v.is_empty());
        check_positive(&mut v, "b", Decimal::ZERO);
        check_non_negative(&mut v, "c", Decimal::NEGATIVE_ONE);
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["b", "c"]);
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(parse("1000000000000001").is_err());
        assert!(parse("99999999999999999999999999999999").is_err());
        assert!(parse("0.0000000000001").is_err(), "13 decimal places");
        assert!(parse("1000000000000000").is_ok());
    }

    #[test]
    fn cents_round_half_away_from_zero() {
        assert_eq!(round_to_cents(Decimal::new(33335, 3)), Decimal::new(3334, 2));
        assert_eq!(round_to_cents(Decimal::new(-33335, 3)), Decimal::new(-3334, 2));
    }

    #[test]
    fn json_decimals_must_be_exact_strings() {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(with = "exact")]
            amount: Decimal,
        }
        let ok: Doc = serde_json::from_str(r#"{"amount": "12.50"}"#).unwrap();
        assert_eq!(ok.amount, Decimal::new(1250, 2));
        assert!(
            serde_json::from_str::<Doc>(r#"{"amount": 12.5}"#).is_err(),
            "numbers would go through floats"
        );
        assert!(serde_json::from_str::<Doc>(r#"{"amount": "1e3"}"#).is_err());
    }

    #[test]
    fn credit_type_defaults_to_usd() {
        let mut v = Violations::default();
        assert_eq!(parse_credit_type(&mut v, "c", ""), "USD");
        parse_credit_type(&mut v, "c", "US D");
        assert_eq!(v.items().len(), 1);
    }

    #[test]
    fn a_credit_type_code_is_letters_digits_underscores_and_dashes() {
        for ok in ["USD", "GPU_HOURS", "X-1", "a"] {
            assert!(is_credit_type_code(ok), "{ok}");
        }
        for bad in ["", "US D", "€", "A.B", &"X".repeat(65)] {
            assert!(!is_credit_type_code(bad), "{bad}");
        }
    }

    #[test]
    fn credit_types_are_case_insensitive_and_kept_upper_case() {
        let mut v = Violations::default();
        assert_eq!(parse_credit_type(&mut v, "c", "usd"), "USD");
        assert_eq!(parse_credit_type(&mut v, "c", "Credits"), "CREDITS");
        assert!(v.is_empty());
    }
}
