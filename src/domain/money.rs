//! Money as integer minor units of an ISO 4217 currency, and the arithmetic of
//! invoice lines: quantity × unit price, tax by rate, with the rounding rule
//! spelled out. No floating point anywhere: a cent lost to `f64` is a cent a
//! client disputes.

use std::fmt;

/// An ISO 4217 currency and the number of decimal places of its minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code `{0}` (expected an ISO 4217 code such as EUR, USD, JPY)")]
    UnknownCurrency(String),
    #[error("`{text}` is not an amount in {currency} (at most {exponent} decimal places)")]
    BadAmount {
        text: String,
        currency: &'static str,
        exponent: u8,
    },
    #[error("`{0}` is not a quantity (a number with at most 3 decimal places)")]
    BadQuantity(String),
    #[error("`{0}` is not a tax rate (a percentage such as 20 or 7.7, at most 2 decimal places)")]
    BadTaxRate(String),
    #[error("amounts in {0} and {1} cannot be combined")]
    CurrencyMismatch(&'static str, &'static str),
    #[error("the amount is too large")]
    Overflow,
}

/// Currencies whose minor unit is not 1/100 (ISO 4217 list).
const ZERO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// Two-decimal currencies an MSP is likely to bill in; others can be added
/// here when a client needs one (an unknown code is refused, never guessed).
const TWO_DECIMALS: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EGP", "EUR", "GBP",
    "HKD", "HUF", "IDR", "ILS", "INR", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "PHP", "PLN",
    "QAR", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "ZAR",
];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        let exponent = if ZERO_DECIMALS.contains(&upper.as_str()) {
            0
        } else if THREE_DECIMALS.contains(&upper.as_str()) {
            3
        } else if TWO_DECIMALS.contains(&upper.as_str()) {
            2
        } else {
            return Err(MoneyError::UnknownCurrency(code.to_string()));
        };
        let bytes = upper.as_bytes();
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            exponent,
        })
    }

    pub fn code(&self) -> &'static str {
        // Every code comes from one of the static tables above.
        ZERO_DECIMALS
            .iter()
            .chain(THREE_DECIMALS)
            .chain(TWO_DECIMALS)
            .find(|c| c.as_bytes() == self.code)
            .copied()
            .unwrap_or("XXX")
    }

    /// Decimal places of the minor unit: JPY 0, EUR 2, KWD 3.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Minor units in one major unit (100 for EUR).
    fn scale(&self) -> i64 {
        10i64.pow(u32::from(self.exponent))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in minor units (cents) of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// Parses a decimal amount in major units ("1234.5", "-3", "0.125" in
    /// KWD); more decimal places than the currency has is an error, not a
    /// rounding.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let bad = || MoneyError::BadAmount {
            text: text.to_string(),
            currency: currency.code(),
            exponent: currency.exponent,
        };
        let minor = parse_fixed(text.trim(), u32::from(currency.exponent)).ok_or_else(bad)?;
        Ok(Self { minor, currency })
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(
                self.currency.code(),
                other.currency.code(),
            ))
        }
    }
}

/// "1234.50" with the currency's decimal places, no grouping, no symbol.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = self.currency.scale();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let major = abs / scale as u64;
        if self.currency.exponent == 0 {
            write!(f, "{sign}{major}")
        } else {
            let fraction = abs % scale as u64;
            let width = usize::from(self.currency.exponent);
            write!(f, "{sign}{major}.{fraction:0width$}")
        }
    }
}

/// A quantity in thousandths (1.5 hours = 1500), so time billed in minutes
/// (0.25 h) and fractional licences stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub const SCALE: i64 = 1000;

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        parse_fixed(text.trim(), 3)
            .map(Self)
            .ok_or_else(|| MoneyError::BadQuantity(text.to_string()))
    }

    pub fn from_thousandths(v: i64) -> Self {
        Self(v)
    }

    pub fn thousandths(&self) -> i64 {
        self.0
    }
}

/// A tax rate in hundredths of a percent (20 % = 2000, 7.7 % = 770).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxRate(i64);

impl TaxRate {
    /// 100 % in the rate's unit.
    const FULL: i64 = 10_000;

    /// Parses a percentage: "20", "7.7", "0".
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        parse_fixed(text.trim().trim_end_matches('%').trim(), 2)
            .filter(|v| (0..=Self::FULL).contains(v))
            .map(Self)
            .ok_or_else(|| MoneyError::BadTaxRate(text.to_string()))
    }

    pub fn from_basis_points(v: i64) -> Self {
        Self(v)
    }

    pub fn basis_points(&self) -> i64 {
        self.0
    }
}

/// `numerator / denominator` rounded half away from zero (commercial
/// rounding: 0.5 cent becomes 1 cent, -0.5 cent becomes -1 cent).
fn div_round_half_away(numerator: i128, denominator: i128) -> i128 {
    let q = numerator / denominator;
    let r = numerator % denominator;
    if 2 * r.abs() >= denominator.abs() {
        q + numerator.signum() * denominator.signum()
    } else {
        q
    }
}

/// How tax is rounded on an invoice. Both are in use (EU VAT allows either,
/// so an invoice records which one it used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaxRounding {
    /// Each line's tax is rounded to the minor unit, then summed.
    PerLine,
    /// Tax is computed on the sum of the net amounts of each rate, then
    /// rounded once per rate.
    PerInvoice,
}

/// One invoice or quote line, priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// quantity × unit price, rounded half away from zero to the minor unit.
    pub net: Money,
    /// The line's own tax, rounded (shown on the line; the invoice total uses
    /// the invoice's rounding rule).
    pub tax: Money,
    pub rate: TaxRate,
}

pub fn price_line(
    quantity: Quantity,
    unit_price: Money,
    rate: TaxRate,
) -> Result<PricedLine, MoneyError> {
    let net = div_round_half_away(
        i128::from(quantity.0) * i128::from(unit_price.minor),
        i128::from(Quantity::SCALE),
    );
    let tax = div_round_half_away(net * i128::from(rate.0), i128::from(TaxRate::FULL));
    let to_money = |v: i128| {
        i64::try_from(v)
            .map(|minor| Money::from_minor(minor, unit_price.currency))
            .map_err(|_| MoneyError::Overflow)
    };
    Ok(PricedLine {
        net: to_money(net)?,
        tax: to_money(tax)?,
        rate,
    })
}

/// An invoice's totals: subtotal, tax per rate (in order of first use), total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub tax_by_rate: Vec<(TaxRate, Money)>,
    pub tax: Money,
    pub total: Money,
}

pub fn totals(
    lines: &[PricedLine],
    currency: Currency,
    rounding: TaxRounding,
) -> Result<Totals, MoneyError> {
    let mut subtotal = Money::zero(currency);
    let mut by_rate: Vec<(TaxRate, Money, Money)> = Vec::new(); // rate, net, line tax
    for line in lines {
        subtotal = subtotal.checked_add(line.net)?;
        match by_rate.iter_mut().find(|(r, ..)| *r == line.rate) {
            Some((_, net, tax)) => {
                *net = net.checked_add(line.net)?;
                *tax = tax.checked_add(line.tax)?;
            }
            None => by_rate.push((line.rate, line.net, line.tax)),
        }
    }
    let mut tax_by_rate = Vec::with_capacity(by_rate.len());
    let mut tax = Money::zero(currency);
    for (rate, net, line_tax) in by_rate {
        let rate_tax = match rounding {
            TaxRounding::PerLine => line_tax,
            TaxRounding::PerInvoice => {
                let v = div_round_half_away(
                    i128::from(net.minor) * i128::from(rate.0),
                    i128::from(TaxRate::FULL),
                );
                Money::from_minor(
                    i64::try_from(v).map_err(|_| MoneyError::Overflow)?,
                    currency,
                )
            }
        };
        tax = tax.checked_add(rate_tax)?;
        tax_by_rate.push((rate, rate_tax));
    }
    Ok(Totals {
        subtotal,
        total: subtotal.checked_add(tax)?,
        tax_by_rate,
        tax,
    })
}

/// Parses a decimal with at most `places` decimal places into an integer
/// scaled by 10^places; `None` for anything else (exponents, grouping,
/// more places, overflow).
fn parse_fixed(text: &str, places: u32) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || fraction.len() > places as usize
        || digits.ends_with('.') && fraction.is_empty() && whole.is_empty()
    {
        return None;
    }
    let scale = 10i64.checked_pow(places)?;
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction_value: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.pow(places - fraction.len() as u32)
    };
    let value = whole.checked_mul(scale)?.checked_add(fraction_value)?;
    Some(if negative { -value } else { value })
}

/// "1,234.50 EUR": grouped thousands, the currency's decimals, the code.
pub fn format_amount(minor: i64, currency: &str) -> String {
    let Ok(cur) = Currency::parse(currency) else {
        return format!("{minor} {currency}");
    };
    let plain = Money::from_minor(minor, cur).to_string();
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f} {}", cur.code()),
        None => format!("{sign}{grouped} {}", cur.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).unwrap()
    }

    #[test]
    fn currencies_know_their_minor_unit() {
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("eur").exponent(), 2);
        assert_eq!(cur("KWD").exponent(), 3);
        assert_eq!(cur("EUR").code(), "EUR");
        assert!(matches!(
            Currency::parse("EURO"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(Currency::parse("XYZ").is_err(), "unknown codes are refused");
    }

    #[test]
    fn amounts_parse_exactly_and_print_with_the_currencys_places() {
        assert_eq!(Money::parse("1234.5", cur("EUR")).unwrap().minor(), 123_450);
        assert_eq!(Money::parse("0.125", cur("KWD")).unwrap().minor(), 125);
        assert_eq!(Money::parse("500", cur("JPY")).unwrap().minor(), 500);
        assert_eq!(Money::parse("-3", cur("USD")).unwrap().minor(), -300);
        assert_eq!(Money::parse(".5", cur("USD")).unwrap().minor(), 50);
        for bad in ["1.234", "1,50", "1e3", "", ".", "abc", "1.2.3", "--1"] {
            assert!(Money::parse(bad, cur("EUR")).is_err(), "{bad}");
        }
        assert!(Money::parse("1.5", cur("JPY")).is_err());
        assert!(Money::parse("99999999999999999999", cur("EUR")).is_err());
        assert_eq!(
            Money::from_minor(123_450, cur("EUR")).to_string(),
            "1234.50"
        );
        assert_eq!(Money::from_minor(-5, cur("EUR")).to_string(), "-0.05");
        assert_eq!(Money::from_minor(125, cur("KWD")).to_string(), "0.125");
        assert_eq!(Money::from_minor(500, cur("JPY")).to_string(), "500");
    }

    #[test]
    fn currencies_do_not_mix() {
        let e = Money::from_minor(1, cur("EUR"));
        let u = Money::from_minor(1, cur("USD"));
        assert_eq!(
            e.checked_add(u),
            Err(MoneyError::CurrencyMismatch("EUR", "USD"))
        );
        assert_eq!(e.checked_sub(e).unwrap(), Money::zero(cur("EUR")));
    }

    #[test]
    fn line_amounts_round_half_away_from_zero() {
        // 1.5 h × 85.00 = 127.50; 19 % tax = 24.225 → 24.23
        let line = price_line(
            Quantity::parse("1.5").unwrap(),
            Money::parse("85", cur("EUR")).unwrap(),
            TaxRate::parse("19").unwrap(),
        )
        .unwrap();
        assert_eq!(line.net.minor(), 12_750);
        assert_eq!(line.tax.minor(), 2_423);
        // A credit line rounds symmetrically: -24.225 → -24.23
        let credit = price_line(
            Quantity::parse("-1.5").unwrap(),
            Money::parse("85", cur("EUR")).unwrap(),
            TaxRate::parse("19").unwrap(),
        )
        .unwrap();
        assert_eq!(credit.tax.minor(), -2_423);
        // 0.333 × 10.00 = 3.33 (3.330)
        let third = price_line(
            Quantity::parse("0.333").unwrap(),
            Money::parse("10", cur("EUR")).unwrap(),
            TaxRate::parse("0").unwrap(),
        )
        .unwrap();
        assert_eq!(third.net.minor(), 333);
        assert!(Quantity::parse("0.0001").is_err());
        assert!(TaxRate::parse("7.7%").is_ok());
        assert!(TaxRate::parse("101").is_err());
        assert!(TaxRate::parse("-1").is_err());
    }

    #[test]
    fn per_line_and_per_invoice_rounding_can_differ_and_both_are_explicit() {
        // Three lines of 0.05 at 10 %: each line's tax 0.005 → 0.01.
        let lines: Vec<PricedLine> = (0..3)
            .map(|_| {
                price_line(
                    Quantity::parse("1").unwrap(),
                    Money::parse("0.05", cur("EUR")).unwrap(),
                    TaxRate::parse("10").unwrap(),
                )
                .unwrap()
            })
            .collect();
        let per_line = totals(&lines, cur("EUR"), TaxRounding::PerLine).unwrap();
        assert_eq!(per_line.subtotal.minor(), 15);
        assert_eq!(per_line.tax.minor(), 3);
        assert_eq!(per_line.total.minor(), 18);
        // On the sum: 0.15 × 10 % = 0.015 → 0.02.
        let per_invoice = totals(&lines, cur("EUR"), TaxRounding::PerInvoice).unwrap();
        assert_eq!(per_invoice.tax.minor(), 2);
        assert_eq!(per_invoice.total.minor(), 17);
        assert_eq!(per_invoice.tax_by_rate.len(), 1);
    }

    #[test]
    fn totals_group_tax_by_rate_and_sum_exactly() {
        let line = |q: &str, p: &str, r: &str| {
            price_line(
                Quantity::parse(q).unwrap(),
                Money::parse(p, cur("KWD")).unwrap(),
                TaxRate::parse(r).unwrap(),
            )
            .unwrap()
        };
        let lines = [
            line("2", "10.125", "5"),
            line("1", "3.333", "0"),
            line("1", "1", "5"),
        ];
        let t = totals(&lines, cur("KWD"), TaxRounding::PerLine).unwrap();
        assert_eq!(t.subtotal.minor(), 20_250 + 3_333 + 1_000);
        assert_eq!(
            t.tax_by_rate
                .iter()
                .map(|(r, m)| (r.basis_points(), m.minor()))
                .collect::<Vec<_>>(),
            vec![(500, 1_013 + 50), (0, 0)]
        );
        assert_eq!(t.total.minor(), t.subtotal.minor() + t.tax.minor());
    }
}
