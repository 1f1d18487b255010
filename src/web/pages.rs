//! Server-rendered pages: the templates of `templates/web/`, the branding,
//! and the formatting of money, quantities and rates for display. Handlers
//! decide what to show; this module only turns it into HTML.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{json, Value};

use crate::config::Branding;

const PAGES: &[(&str, &str)] = &[
    (
        "layout_head",
        include_str!("../../templates/web/layout_head.hbs"),
    ),
    (
        "layout_foot",
        include_str!("../../templates/web/layout_foot.hbs"),
    ),
    (
        "layout_lines",
        include_str!("../../templates/web/layout_lines.hbs"),
    ),
    ("invoice", include_str!("../../templates/web/invoice.hbs")),
    ("quote", include_str!("../../templates/web/quote.hbs")),
    (
        "statement",
        include_str!("../../templates/web/statement.hbs"),
    ),
    (
        "payment_methods",
        include_str!("../../templates/web/payment_methods.hbs"),
    ),
    (
        "not_found",
        include_str!("../../templates/web/not_found.hbs"),
    ),
    ("expired", include_str!("../../templates/web/expired.hbs")),
    (
        "renew_sent",
        include_str!("../../templates/web/renew_sent.hbs"),
    ),
    (
        "form_expired",
        include_str!("../../templates/web/form_expired.hbs"),
    ),
    (
        "unavailable",
        include_str!("../../templates/web/unavailable.hbs"),
    ),
    (
        "preferences",
        include_str!("../../templates/web/preferences.hbs"),
    ),
    (
        "unsubscribed",
        include_str!("../../templates/web/unsubscribed.hbs"),
    ),
    (
        "link_revoked",
        include_str!("../../templates/web/link_revoked.hbs"),
    ),
    ("links", include_str!("../../templates/web/links.hbs")),
    (
        "links_sent",
        include_str!("../../templates/web/links_sent.hbs"),
    ),
    ("ticket", include_str!("../../templates/web/ticket.hbs")),
    ("tickets", include_str!("../../templates/web/tickets.hbs")),
    ("contacts", include_str!("../../templates/web/contacts.hbs")),
    (
        "address_change",
        include_str!("../../templates/web/address_change.hbs"),
    ),
    ("notice", include_str!("../../templates/web/notice.hbs")),
];

#[derive(Clone)]
pub struct Pages {
    registry: Arc<Handlebars<'static>>,
    branding: Branding,
}

impl Pages {
    pub fn new(branding: Branding) -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        for (name, text) in PAGES {
            if name.starts_with("layout_") {
                registry
                    .register_partial(name, *text)
                    .expect("built-in partials parse");
            } else {
                registry
                    .register_template_string(name, *text)
                    .expect("built-in pages parse");
            }
        }
        Self {
            registry: Arc::new(registry),
            branding,
        }
    }

    /// Renders page `name` with `data` (an object) plus `title` and `brand`.
    pub fn render(&self, status: StatusCode, name: &str, title: &str, mut data: Value) -> Response {
        if let Value::Object(map) = &mut data {
            map.insert("title".into(), json!(title));
            map.insert("brand".into(), json!(self.branding));
        }
        match self.registry.render(name, &data) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(page = name, error = %e, "page template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
            }
        }
    }

    /// The database is unreachable: try again later.
    pub fn unavailable(&self) -> Response {
        self.render(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Please try again",
            json!({}),
        )
    }

    pub fn not_found(&self) -> Response {
        self.render(StatusCode::NOT_FOUND, "not_found", "Not found", json!({}))
    }
}

/// The lines of an invoice or quote, and its tax per rate, for a template.
/// `stored_tax` is the document's tax total, which is authoritative: with
/// per-invoice rounding it may differ from the sum of the lines' taxes, so a
/// single rate shows it.
pub fn document_lines(
    lines: &[crate::db::invoices::InvoiceLineRow],
    currency: &str,
    stored_tax: i64,
) -> (Value, Value) {
    let mut tax_lines: Vec<(i64, i64)> = Vec::new();
    for l in lines {
        match tax_lines.iter_mut().find(|(r, _)| *r == l.tax_rate_bp) {
            Some((_, sum)) => *sum += l.tax_minor,
            None => tax_lines.push((l.tax_rate_bp, l.tax_minor)),
        }
    }
    if tax_lines.len() == 1 {
        tax_lines[0].1 = stored_tax;
    }
    let rows = lines
        .iter()
        .map(|l| {
            json!({
                "description": l.description,
                "quantity": quantity(l.quantity_milli),
                "unit_price": money(l.unit_price_minor, currency),
                "tax_rate": tax_rate(l.tax_rate_bp),
                "net": money(l.net_minor, currency),
            })
        })
        .collect::<Vec<_>>();
    let taxes = tax_lines
        .iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|(r, amount)| json!({ "rate": tax_rate(*r), "amount": money(*amount, currency) }))
        .collect::<Vec<_>>();
    (Value::Array(rows), Value::Array(taxes))
}

pub use crate::domain::format_amount as money;

/// Thousandths as a short decimal: 1500 → "1.5", 12000 → "12".
pub fn quantity(thousandths: i64) -> String {
    decimal(thousandths, 3)
}

/// Hundredths of a percent: 1900 → "19 %", 770 → "7.7 %".
pub fn tax_rate(basis_points: i64) -> String {
    format!("{} %", decimal(basis_points, 2))
}

fn decimal(value: i64, places: u32) -> String {
    let scale = 10i64.pow(places);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let whole = abs / scale as u64;
    let fraction = abs % scale as u64;
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let f = format!("{fraction:0width$}", width = places as usize);
    format!("{sign}{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(money(123_456_789, "EUR"), "1,234,567.89 EUR");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(5000, "JPY"), "5,000 JPY");
        assert_eq!(money(125, "KWD"), "0.125 KWD");
        assert_eq!(quantity(1500), "1.5");
        assert_eq!(quantity(12_000), "12");
        assert_eq!(quantity(333), "0.333");
        assert_eq!(tax_rate(1900), "19 %");
        assert_eq!(tax_rate(770), "7.7 %");
    }
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn every_page_renders_with_the_fields_its_handler_gives() {
        let pages = Pages::new(Branding {
            company_name: "Example IT".into(),
            logo_url: None,
            primary_color: "#1f5fbf".into(),
            footer: None,
            subject_prefix: None,
        });
        for (name, data) in [
            ("not_found", json!({})),
            ("renew_sent", json!({})),
            ("form_expired", json!({})),
            ("unavailable", json!({})),
            ("expired", json!({"token": "t", "csrf": "c"})),
            ("link_revoked", json!({})),
            ("links_sent", json!({})),
            ("unsubscribed", json!({"what": "Monthly statement"})),
            ("links", json!({"csrf": "c", "notice": null})),
            ("notice", json!({"text": "t"})),
            (
                "address_change",
                json!({"id": 1, "new_email": "a@b.test", "csrf": "c"}),
            ),
            (
                "tickets",
                json!({"all_of_client": true, "search": null, "filtered": false, "has_tickets": true,
                    "export": "/tickets/export.csv",
                    "statuses": [{"value": "open", "label": "Open", "selected": false}],
                    "tickets": [{"number": "T-1", "subject": "s", "status": "Open",
                        "requester": "a@b.test", "updated": "2026-11-20 10:00", "link": "/l/x"}]}),
            ),
            (
                "contacts",
                json!({"csrf": "c", "notice": null, "contacts": [{"id": 1, "name": null,
                    "email": "a@b.test", "is_me": true, "pending_email": null,
                    "types": {"primary": true, "billing": false, "technical": false,
                        "names": "standard, primary"}}]}),
            ),
            (
                "ticket",
                json!({"number": "T-1", "subject": "s", "status": "Open", "priority": "Medium",
                    "category": null, "assignee": null, "time_worked": null,
                    "opened": "2026-11-20 10:00", "updated": "2026-11-20 10:00",
                    "closed": false, "can_reopen": false, "reopen_days": 7, "notice": null,
                    "csrf": "c", "max_mb": 25, "tickets_link": "/l/t",
                    "messages": [{"author": "A", "staff": false, "date": "2026-11-20 10:00",
                        "text": "t", "html": null, "whole_text": null, "has_files": true,
                        "files": [{"name": "a.png", "size": "1 KB", "url": "/x"}]}]}),
            ),
            (
                "preferences",
                json!({"csrf": "c", "notice": null, "kinds": [
                    {"name": "statement", "label": "Statement", "wanted": true}]}),
            ),
        ] {
            let mut full = data.clone();
            full["title"] = json!("T");
            full["brand"] = json!(pages.branding);
            if let Err(e) = pages.registry.render(name, &full) {
                panic!("{name}: {e}");
            }
            let response = pages.render(StatusCode::OK, name, "T", data);
            assert_eq!(response.status(), StatusCode::OK, "{name}");
        }
        for name in ["invoice", "quote"] {
            assert!(pages.registry.has_template(name), "{name} registered");
        }
    }
}
