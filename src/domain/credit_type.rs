//! Credit types: ISO 4217 currencies, known to every organization, and custom credit
//! types (e.g. "CREDITS", "GPU_HOURS") an organization declares before using them, so a
//! typo is an error instead of a new balance that silently never meets the others.

use chrono::{DateTime, Utc};

use super::ids::ApiKeyId;
use super::text::check_name;
use super::validation::Violations;

/// The active ISO 4217 currency codes (alphabetic), plus the precious metals and SDR.
const ISO_4217: [&str; 170] = [
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD",
    "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY",
    "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP",
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR",
    "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
    "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF", "XAG",
    "XAU", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT", "YER", "ZAR", "ZMW", "ZWG", "CUC", "MXV", "UYW",
    "BOV", "CHE", "CHW", "CLF", "COU",
];

/// Whether `code` (upper-case) is an ISO 4217 currency.
pub fn is_iso_currency(code: &str) -> bool {
    ISO_4217.contains(&code)
}

/// Whether `code` (upper-case) must be declared by the organization before use.
pub fn is_custom(code: &str) -> bool {
    !is_iso_currency(code)
}

/// A custom credit type an organization declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditType {
    /// Upper-case code, as amounts carry it.
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<ApiKeyId>,
}

/// Checks a declaration: `code` as parsed (upper-cased) must not be an ISO currency,
/// which every organization knows already.
pub fn validate_declaration(code: &str, name: &str, v: &mut Violations) {
    if is_iso_currency(code) {
        v.add("code", "is an ISO 4217 currency, known without declaring it");
    }
    check_name(v, "name", name, 200);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_codes_are_known_and_others_are_custom() {
        assert!(is_iso_currency("USD") && is_iso_currency("EUR") && is_iso_currency("JPY"));
        assert!(is_custom("CREDITS") && is_custom("USDX") && is_custom("ABC"));
        assert!(!is_custom("USD") && !is_custom("XAU"), "currencies need no declaration");
        assert!(ISO_4217.iter().all(|c| c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase())));
    }

    #[test]
    fn a_currency_cannot_be_declared_as_a_custom_type() {
        let mut v = Violations::default();
        validate_declaration("EUR", "Euro", &mut v);
        validate_declaration("CREDITS", "", &mut v);
        let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["code", "name"]);
    }
}
