//! `postdesk import FILE.json`: clients (with their time zone), their
//! domains and contacts, invoices, quotes, recurring invoice definitions,
//! what expires (domains, certificates, asset warranties, contracts) and
//! prepaid hour blocks. Idempotent: importing the same file twice leaves the database
//! exactly as after the first time (unchanged rows are not written at all;
//! an invoice whose number exists is left as it is). Everything is checked
//! before anything is written, and errors name the file and the JSON path.
//!
//! ```json
//! {"clients":[{"name":"Customer Ltd","domains":["customer.test"],
//!   "contacts":[{"name":"Alice","email":"alice@customer.test","types":["primary"]}]}],
//!  "invoices":[{"number":"INV-2026-0042","client":"Customer Ltd","currency":"EUR",
//!   "issue_date":"2026-11-01","due_date":"2026-11-15","status":"sent",
//!   "tax_rounding":"per-line","terms":"Net 14",
//!   "lines":[{"description":"Managed workplace","quantity":"12","unit_price":"45.00","tax_rate":"19"}]}]}
//! ```
//! Amounts, quantities and tax rates are decimal strings (or JSON numbers):
//! `unit_price` in the currency's major unit with at most its decimal places,
//! `quantity` with at most 3 places, `tax_rate` in percent.

use serde::Deserialize;

use crate::clock::Millis;
use crate::db::expiring::{self, ItemKind, NewItem, Upserted};
use crate::db::hours::{self, NewBlock};
use crate::db::invoices::{self, NewInvoice, NewInvoiceLine, NewQuote};
use crate::db::recurring::{self, NewRecurring};
use crate::db::{contacts, Db, DbError};
use crate::domain::{
    price_line, totals, ContactTypes, Currency, EmailAddress, Frequency, InvoiceStatus, Money,
    Quantity, QuoteStatus, TaxRate, TaxRounding,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFile {
    #[serde(default)]
    pub clients: Vec<ImportClient>,
    #[serde(default)]
    pub invoices: Vec<ImportInvoice>,
    #[serde(default)]
    pub quotes: Vec<ImportQuote>,
    #[serde(default)]
    pub recurring_invoices: Vec<ImportRecurring>,
    #[serde(default)]
    pub domains: Vec<ImportExpiring>,
    #[serde(default)]
    pub certificates: Vec<ImportExpiring>,
    /// Assets by their warranty's end.
    #[serde(default)]
    pub assets: Vec<ImportExpiring>,
    #[serde(default)]
    pub contracts: Vec<ImportExpiring>,
    #[serde(default)]
    pub hour_blocks: Vec<ImportHourBlock>,
}

/// Prepaid hours of a client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportHourBlock {
    pub client: String,
    /// One block per client and name ("Q1 2027").
    pub name: String,
    /// Hours, up to two decimals ("20", "7.5").
    pub hours: Decimal,
    pub starts_on: String,
    /// The last day it can be drawn on; absent: until used up.
    #[serde(default)]
    pub ends_on: Option<String>,
}

/// A domain, certificate, asset (its warranty) or contract that expires.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportExpiring {
    pub client: String,
    /// The domain, the certificate's host name, the asset, the contract.
    pub name: String,
    /// The last day (for an asset: of its warranty).
    pub expires_on: String,
    /// Certificates only: read the real expiry over TLS at each run.
    #[serde(default)]
    pub probe: bool,
    /// Certificates only: the port to probe (443 when absent).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRecurring {
    pub client: String,
    /// What is billed, as the client knows it ("Managed workplace, 12 seats");
    /// one definition per client and scope.
    pub scope: String,
    pub currency: String,
    /// The invoice line's text; the scope when absent.
    #[serde(default)]
    pub description: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    #[serde(default)]
    pub tax_rate: Option<Decimal>,
    /// monthly, quarterly, yearly
    pub frequency: String,
    pub next_bill_date: String,
    #[serde(default = "default_terms_days")]
    pub payment_terms_days: u32,
    #[serde(default)]
    pub auto_pay: bool,
}

fn default_terms_days() -> u32 {
    14
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuote {
    pub number: String,
    pub client: String,
    pub currency: String,
    pub issue_date: String,
    pub expiry_date: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub tax_rounding: Option<TaxRounding>,
    pub lines: Vec<ImportLine>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub terms: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportInvoice {
    pub number: String,
    /// The client's name, as imported.
    pub client: String,
    pub currency: String,
    pub issue_date: String,
    pub due_date: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub tax_rounding: Option<TaxRounding>,
    pub lines: Vec<ImportLine>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub terms: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    #[serde(default)]
    pub tax_rate: Option<Decimal>,
}

/// A decimal given as a JSON string ("12.50") or number (12.5).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Text(String),
    Number(serde_json::Number),
}

impl Decimal {
    fn text(&self) -> String {
        match self {
            Decimal::Text(t) => t.clone(),
            Decimal::Number(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportClient {
    pub name: String,
    /// The client's IANA time zone (`Europe/Berlin`); the company's when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The monthly statement mail to billing contacts (optional mail; on
    /// unless switched off here).
    #[serde(default)]
    pub statement_mail: Option<bool>,
    /// The monthly service report to primary contacts (optional mail).
    #[serde(default)]
    pub service_report: Option<bool>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<ImportContact>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportContact {
    pub name: Option<String>,
    pub email: String,
    #[serde(default)]
    pub types: Vec<String>,
    /// `false`: this person opted out of optional mail (statements, reports).
    #[serde(default)]
    pub optional_mail: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    pub clients: usize,
    pub domains: usize,
    pub contacts: usize,
    /// Invoices added; numbers already present are counted in `invoices_kept`.
    pub invoices: usize,
    pub invoices_kept: usize,
    pub quotes: usize,
    pub quotes_kept: usize,
    pub recurring_invoices: usize,
    pub recurring_invoices_kept: usize,
    /// Domains, certificates, assets and contracts added or given a new date.
    pub expiring_items: usize,
    pub expiring_items_kept: usize,
    pub hour_blocks: usize,
    pub hour_blocks_kept: usize,
}

/// An invoice with every field typed and every amount computed.
struct ValidInvoice {
    client: String,
    invoice: NewInvoice,
}

fn validate_invoices(data: &ImportFile, file: &str) -> Result<Vec<ValidInvoice>, ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    let date = |path: String, text: &str| calendar_date(file, &path, text);
    let mut out = Vec::new();
    for (i, inv) in data.invoices.iter().enumerate() {
        let at = |field: &str| format!("invoices[{i}].{field}");
        let number = document_number(file, &at("number"), &inv.number)?;
        let currency =
            Currency::parse(&inv.currency).map_err(|e| invalid(at("currency"), e.to_string()))?;
        let issue_date = date(at("issue_date"), &inv.issue_date)?;
        let due_date = date(at("due_date"), &inv.due_date)?;
        if due_date < issue_date {
            return Err(invalid(at("due_date"), "is before the issue date".into()));
        }
        let status = match &inv.status {
            None => InvoiceStatus::Sent,
            Some(s) => InvoiceStatus::parse(s).ok_or_else(|| {
                invalid(
                    at("status"),
                    format!(
                        "`{s}` is not one of {}",
                        InvoiceStatus::ALL.map(|s| s.as_str()).join(", ")
                    ),
                )
            })?,
        };
        let tax_rounding = inv.tax_rounding.unwrap_or(TaxRounding::PerLine);
        let (lines, totals) = priced_lines(
            file,
            &format!("invoices[{i}]"),
            &inv.lines,
            currency,
            tax_rounding,
        )?;
        out.push(ValidInvoice {
            client: inv.client.trim().to_string(),
            invoice: NewInvoice {
                number,
                client_id: 0,
                status,
                currency,
                issue_date,
                due_date,
                tax_rounding,
                lines,
                totals,
                notes: optional_text(&inv.notes),
                terms: optional_text(&inv.terms),
            },
        });
    }
    Ok(out)
}

/// A validated import: every address and type parsed before anything is written.
struct ValidClient {
    name: String,
    timezone: Option<String>,
    statement_mail: Option<bool>,
    service_report: Option<bool>,
    domains: Vec<String>,
    contacts: Vec<(EmailAddress, Option<String>, ContactTypes, Option<bool>)>,
}

pub fn parse(text: &str, file: &str) -> Result<ImportFile, ImportError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| ImportError::Invalid {
        file: file.into(),
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn validate(data: &ImportFile, file: &str) -> Result<Vec<ValidClient>, ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    let mut out = Vec::new();
    for (i, c) in data.clients.iter().enumerate() {
        let name = c.name.trim().to_string();
        if name.is_empty() {
            return Err(invalid(
                format!("clients[{i}].name"),
                "must not be empty".into(),
            ));
        }
        let timezone = match &c.timezone {
            Some(tz) => Some(
                crate::config::schedules::parse_timezone(tz)
                    .map_err(|e| invalid(format!("clients[{i}].timezone"), e))?
                    .name()
                    .to_string(),
            ),
            None => None,
        };
        let mut domains = Vec::new();
        for (j, d) in c.domains.iter().enumerate() {
            // A domain is valid when an address in it is.
            let probe = EmailAddress::parse(&format!("x@{}", d.trim()))
                .map_err(|e| invalid(format!("clients[{i}].domains[{j}]"), e.to_string()))?;
            domains.push(probe.domain().to_string());
        }
        let mut contacts = Vec::new();
        for (j, ct) in c.contacts.iter().enumerate() {
            let email = EmailAddress::parse(&ct.email)
                .map_err(|e| invalid(format!("clients[{i}].contacts[{j}].email"), e.to_string()))?;
            let types = ContactTypes::parse_list(&ct.types)
                .map_err(|e| invalid(format!("clients[{i}].contacts[{j}].types"), e))?;
            let name = ct
                .name
                .as_ref()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            contacts.push((email, name, types, ct.optional_mail));
        }
        out.push(ValidClient {
            name,
            timezone,
            statement_mail: c.statement_mail,
            service_report: c.service_report,
            domains,
            contacts,
        });
    }
    Ok(out)
}

/// A document number: 1-64 letters, digits, '-' or '_' (it appears in
/// URLs and signed links).
fn document_number(file: &str, path: &str, text: &str) -> Result<String, ImportError> {
    let number = text.trim().to_string();
    let ok = (1..=64).contains(&number.len())
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(number)
    } else {
        Err(ImportError::Invalid {
            file: file.into(),
            path: path.into(),
            message: "must be 1-64 letters, digits, '-' or '_'".into(),
        })
    }
}

fn calendar_date(file: &str, path: &str, text: &str) -> Result<chrono::NaiveDate, ImportError> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| ImportError::Invalid {
        file: file.into(),
        path: path.into(),
        message: format!("`{text}` is not a date like 2026-11-23"),
    })
}

fn optional_text(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

struct ValidQuote {
    client: String,
    quote: NewQuote,
}

fn validate_quotes(data: &ImportFile, file: &str) -> Result<Vec<ValidQuote>, ImportError> {
    let mut out = Vec::new();
    for (i, q) in data.quotes.iter().enumerate() {
        let at = |field: &str| format!("quotes[{i}].{field}");
        let invalid = |path: String, message: String| ImportError::Invalid {
            file: file.into(),
            path,
            message,
        };
        let number = document_number(file, &at("number"), &q.number)?;
        let currency =
            Currency::parse(&q.currency).map_err(|e| invalid(at("currency"), e.to_string()))?;
        let issue_date = calendar_date(file, &at("issue_date"), &q.issue_date)?;
        let expiry_date = calendar_date(file, &at("expiry_date"), &q.expiry_date)?;
        if expiry_date < issue_date {
            return Err(invalid(
                at("expiry_date"),
                "is before the issue date".into(),
            ));
        }
        let status = match q.status.as_deref().map(str::trim) {
            None | Some("sent") => QuoteStatus::Sent,
            Some("draft") => QuoteStatus::Draft,
            Some(other) => {
                return Err(invalid(
                    at("status"),
                    format!("`{other}` is not one of draft, sent (decisions come from the client)"),
                ))
            }
        };
        let tax_rounding = q.tax_rounding.unwrap_or(TaxRounding::PerLine);
        let (lines, totals) = priced_lines(
            file,
            &format!("quotes[{i}]"),
            &q.lines,
            currency,
            tax_rounding,
        )?;
        out.push(ValidQuote {
            client: q.client.trim().to_string(),
            quote: NewQuote {
                number,
                client_id: 0,
                status,
                currency,
                issue_date,
                expiry_date,
                tax_rounding,
                lines,
                totals,
                notes: optional_text(&q.notes),
                terms: optional_text(&q.terms),
            },
        });
    }
    Ok(out)
}

struct ValidRecurring {
    client: String,
    recurring: NewRecurring,
}

fn validate_recurring(data: &ImportFile, file: &str) -> Result<Vec<ValidRecurring>, ImportError> {
    let mut out = Vec::new();
    for (i, r) in data.recurring_invoices.iter().enumerate() {
        let at = |field: &str| format!("recurring_invoices[{i}].{field}");
        let invalid = |path: String, message: String| ImportError::Invalid {
            file: file.into(),
            path,
            message,
        };
        let scope = r.scope.trim().to_string();
        if scope.is_empty() {
            return Err(invalid(at("scope"), "must not be empty".into()));
        }
        let currency =
            Currency::parse(&r.currency).map_err(|e| invalid(at("currency"), e.to_string()))?;
        let quantity = Quantity::parse(&r.quantity.text())
            .map_err(|e| invalid(at("quantity"), e.to_string()))?;
        let unit_price = Money::parse(&r.unit_price.text(), currency)
            .map_err(|e| invalid(at("unit_price"), e.to_string()))?;
        let tax_rate = match &r.tax_rate {
            None => TaxRate::from_basis_points(0),
            Some(t) => {
                TaxRate::parse(&t.text()).map_err(|e| invalid(at("tax_rate"), e.to_string()))?
            }
        };
        // The amount must be computable now, not fail on the billing day.
        price_line(quantity, unit_price, tax_rate)
            .map_err(|e| invalid(at("unit_price"), e.to_string()))?;
        let frequency = Frequency::parse(&r.frequency).ok_or_else(|| {
            invalid(
                at("frequency"),
                format!("`{}` is not one of monthly, quarterly, yearly", r.frequency),
            )
        })?;
        let next_bill_date = calendar_date(file, &at("next_bill_date"), &r.next_bill_date)?;
        if r.payment_terms_days > 365 {
            return Err(invalid(
                at("payment_terms_days"),
                "must be at most 365".into(),
            ));
        }
        out.push(ValidRecurring {
            client: r.client.trim().to_string(),
            recurring: NewRecurring {
                client_id: 0,
                description: optional_text(&r.description).unwrap_or_else(|| scope.clone()),
                scope,
                currency,
                quantity,
                unit_price,
                tax_rate,
                frequency,
                next_bill_date,
                payment_terms_days: r.payment_terms_days,
                auto_pay: r.auto_pay,
            },
        });
    }
    Ok(out)
}

/// Types and prices the lines of a document at JSON path `at`.
fn priced_lines(
    file: &str,
    at: &str,
    lines: &[ImportLine],
    currency: Currency,
    tax_rounding: TaxRounding,
) -> Result<(Vec<NewInvoiceLine>, crate::domain::Totals), ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    if lines.is_empty() {
        return Err(invalid(
            format!("{at}.lines"),
            "at least one line is needed".into(),
        ));
    }
    let mut out = Vec::new();
    for (j, l) in lines.iter().enumerate() {
        let field = |name: &str| format!("{at}.lines[{j}].{name}");
        let description = l.description.trim().to_string();
        if description.is_empty() {
            return Err(invalid(field("description"), "must not be empty".into()));
        }
        let quantity = Quantity::parse(&l.quantity.text())
            .map_err(|e| invalid(field("quantity"), e.to_string()))?;
        let unit_price = Money::parse(&l.unit_price.text(), currency)
            .map_err(|e| invalid(field("unit_price"), e.to_string()))?;
        let rate = match &l.tax_rate {
            None => TaxRate::from_basis_points(0),
            Some(r) => {
                TaxRate::parse(&r.text()).map_err(|e| invalid(field("tax_rate"), e.to_string()))?
            }
        };
        let priced = price_line(quantity, unit_price, rate)
            .map_err(|e| invalid(format!("{at}.lines[{j}]"), e.to_string()))?;
        out.push(NewInvoiceLine {
            description,
            quantity,
            unit_price,
            priced,
        });
    }
    let priced: Vec<_> = out.iter().map(|l| l.priced.clone()).collect();
    let totals = totals(&priced, currency, tax_rounding)
        .map_err(|e| invalid(format!("{at}.lines"), e.to_string()))?;
    Ok((out, totals))
}

/// Applies `data` in one transaction.
pub async fn import(
    db: &Db,
    data: &ImportFile,
    file: &str,
    now: Millis,
) -> Result<ImportSummary, ImportError> {
    let clients = validate(data, file)?;
    let invoices = validate_invoices(data, file)?;
    let quotes = validate_quotes(data, file)?;
    let recurring = validate_recurring(data, file)?;
    let expiring = validate_expiring(data, file)?;
    let blocks = validate_hour_blocks(data, file)?;
    let mut summary = ImportSummary::default();
    let mut tx = db.begin().await?;
    for c in &clients {
        let client_id = contacts::upsert_client(&mut tx, &c.name, now).await?;
        if let Some(tz) = &c.timezone {
            contacts::set_client_timezone(&mut tx, client_id, tz).await?;
        }
        if c.statement_mail.is_some() || c.service_report.is_some() {
            let (statement, report) = contacts::client_optional_mail(&mut tx, client_id).await?;
            contacts::set_client_optional_mail(
                &mut tx,
                client_id,
                c.statement_mail.unwrap_or(statement),
                c.service_report.unwrap_or(report),
            )
            .await?;
        }
        summary.clients += 1;
        for d in &c.domains {
            contacts::upsert_client_domain(&mut tx, client_id, d).await?;
            summary.domains += 1;
        }
        for (email, name, types, optional_mail) in &c.contacts {
            contacts::upsert_imported_contact(
                &mut tx,
                client_id,
                email,
                name.as_deref(),
                *types,
                now,
            )
            .await?;
            if let Some(wanted) = optional_mail {
                if let Some(contact) = contacts::find_contact_by_email(&mut tx, email).await? {
                    contacts::set_optional_mail(&mut tx, contact.id, *wanted).await?;
                }
            }
            summary.contacts += 1;
        }
    }
    for (i, v) in invoices.into_iter().enumerate() {
        let client_id = contacts::find_client_by_name(&mut tx, &v.client)
            .await?
            .ok_or_else(|| ImportError::Invalid {
                file: file.into(),
                path: format!("invoices[{i}].client"),
                message: format!("no client is called `{}`", v.client),
            })?;
        let invoice = NewInvoice {
            client_id,
            ..v.invoice
        };
        match invoices::insert_invoice(&mut tx, &invoice, now).await? {
            Some(_) => summary.invoices += 1,
            None => summary.invoices_kept += 1,
        }
    }
    for (i, v) in quotes.into_iter().enumerate() {
        let client_id = contacts::find_client_by_name(&mut tx, &v.client)
            .await?
            .ok_or_else(|| ImportError::Invalid {
                file: file.into(),
                path: format!("quotes[{i}].client"),
                message: format!("no client is called `{}`", v.client),
            })?;
        let quote = NewQuote {
            client_id,
            ..v.quote
        };
        match invoices::insert_quote(&mut tx, &quote, now).await? {
            Some(_) => summary.quotes += 1,
            None => summary.quotes_kept += 1,
        }
    }
    for (i, v) in recurring.into_iter().enumerate() {
        let client_id = contacts::find_client_by_name(&mut tx, &v.client)
            .await?
            .ok_or_else(|| ImportError::Invalid {
                file: file.into(),
                path: format!("recurring_invoices[{i}].client"),
                message: format!("no client is called `{}`", v.client),
            })?;
        let definition = NewRecurring {
            client_id,
            ..v.recurring
        };
        match recurring::insert_recurring(&mut tx, &definition, now).await? {
            Some(_) => summary.recurring_invoices += 1,
            None => summary.recurring_invoices_kept += 1,
        }
    }
    for v in expiring {
        let client_id = contacts::find_client_by_name(&mut tx, &v.client)
            .await?
            .ok_or_else(|| ImportError::Invalid {
                file: file.into(),
                path: format!("{}.client", v.path),
                message: format!("no client is called `{}`", v.client),
            })?;
        let item = NewItem {
            client_id,
            ..v.item
        };
        match expiring::upsert_item(&mut tx, &item, now).await? {
            Upserted::Added | Upserted::Updated => summary.expiring_items += 1,
            Upserted::Unchanged => summary.expiring_items_kept += 1,
        }
    }
    for (i, (client, block)) in blocks.into_iter().enumerate() {
        let client_id = contacts::find_client_by_name(&mut tx, &client)
            .await?
            .ok_or_else(|| ImportError::Invalid {
                file: file.into(),
                path: format!("hour_blocks[{i}].client"),
                message: format!("no client is called `{client}`"),
            })?;
        let block = NewBlock { client_id, ..block };
        match hours::upsert_block(&mut tx, &block, now).await? {
            Upserted::Added | Upserted::Updated => summary.hour_blocks += 1,
            Upserted::Unchanged => summary.hour_blocks_kept += 1,
        }
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(summary)
}

fn validate_hour_blocks(
    data: &ImportFile,
    file: &str,
) -> Result<Vec<(String, NewBlock)>, ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    let mut out = Vec::new();
    for (i, b) in data.hour_blocks.iter().enumerate() {
        let at = |field: &str| format!("hour_blocks[{i}].{field}");
        let name = b.name.trim().to_string();
        if name.is_empty() || name.len() > 100 {
            return Err(invalid(at("name"), "must be 1-100 characters".into()));
        }
        // Hours to minutes: "7.5" -> 450, at most two decimals.
        let text = b.hours.text();
        let quantity = Quantity::parse(&text).map_err(|e| invalid(at("hours"), e.to_string()))?;
        let minutes = quantity.thousandths() * 60 / 1000;
        if minutes <= 0 || quantity.thousandths() * 60 % 1000 != 0 {
            return Err(invalid(
                at("hours"),
                format!("`{text}` must be more than zero and a whole number of minutes"),
            ));
        }
        let starts_on = calendar_date(file, &at("starts_on"), &b.starts_on)?;
        let ends_on = match &b.ends_on {
            Some(t) => Some(calendar_date(file, &at("ends_on"), t)?),
            None => None,
        };
        if ends_on.is_some_and(|e| e < starts_on) {
            return Err(invalid(at("ends_on"), "is before starts_on".into()));
        }
        out.push((
            b.client.trim().to_string(),
            NewBlock {
                client_id: 0,
                name,
                minutes,
                starts_on,
                ends_on,
            },
        ));
    }
    Ok(out)
}

struct ValidExpiring {
    /// The JSON path of the entry, for errors found while writing.
    path: String,
    client: String,
    item: NewItem,
}

fn validate_expiring(data: &ImportFile, file: &str) -> Result<Vec<ValidExpiring>, ImportError> {
    let invalid = |path: String, message: String| ImportError::Invalid {
        file: file.into(),
        path,
        message,
    };
    let lists = [
        ("domains", ItemKind::Domain, &data.domains),
        ("certificates", ItemKind::Certificate, &data.certificates),
        ("assets", ItemKind::Warranty, &data.assets),
        ("contracts", ItemKind::Contract, &data.contracts),
    ];
    let mut out = Vec::new();
    for (list, kind, entries) in lists {
        for (i, e) in entries.iter().enumerate() {
            let path = format!("{list}[{i}]");
            let at = |field: &str| format!("{path}.{field}");
            let name = e.name.trim().to_string();
            if name.is_empty() || name.len() > 255 {
                return Err(invalid(at("name"), "must be 1-255 characters".into()));
            }
            let expires_on = calendar_date(file, &at("expires_on"), &e.expires_on)?;
            if kind != ItemKind::Certificate && (e.probe || e.port.is_some()) {
                return Err(invalid(
                    at(if e.probe { "probe" } else { "port" }),
                    "only certificates can be probed".into(),
                ));
            }
            if e.probe {
                // The probe connects to the name: it must be a host name.
                if !crate::schedule::cert_probe::is_probe_host(&name) {
                    return Err(invalid(
                        at("name"),
                        "a probed certificate's name must be its host name".into(),
                    ));
                }
            }
            if e.port == Some(0) {
                return Err(invalid(at("port"), "must be 1-65535".into()));
            }
            out.push(ValidExpiring {
                client: e.client.trim().to_string(),
                item: NewItem {
                    client_id: 0,
                    kind,
                    name,
                    expires_on,
                    probe: e.probe,
                    probe_port: e.port,
                    notes: optional_text(&e.notes),
                },
                path,
            });
        }
    }
    Ok(out)
}
