//! What an invoice PDF shows and in what order: the branded heading, who
//! is billed and the dates, the line items, subtotal, tax per rate, total,
//! payments applied and balance due, then terms and notes. Figures are
//! formatted by the same functions as the invoice web page
//! (`web::pages::{money, quantity, tax_rate, document_lines}`), so both show
//! the same numbers. Page flow is `flow`; the table itself is `line_table`.

use serde_json::Value;

use super::canvas::{Page, Rgb};
use super::flow::{Flow, RunningHead, CONTENT_WIDTH, LEFT, MARGIN, RIGHT};
use super::fonts::{Typefaces, Weight};
use super::line_table::{self, AMOUNT_WIDTH, CELL_PADDING};
use super::PdfPayment;
use crate::config::Branding;
use crate::db::invoices::InvoiceDetail;
use crate::domain::InvoiceStatus;
use crate::web::pages::{document_lines, money, quantity, tax_rate};

const BODY: f32 = 9.0;
const BODY_LINE: f32 = 12.0;

/// Lays the invoice out on as many pages as it needs.
pub fn invoice_pages(
    invoice: &InvoiceDetail,
    payments: &[PdfPayment],
    branding: &Branding,
    brand: Rgb,
    faces: &Typefaces,
) -> Vec<Page> {
    let summary = &invoice.summary;
    let head = RunningHead {
        company: branding.company_name.clone(),
        title: format!("Invoice {} (continued)", summary.number),
        brand,
    };
    let mut flow = Flow::new(faces, head, branding.footer.as_deref());
    heading(&mut flow, invoice, branding, brand);

    let currency = summary.currency.as_str();
    let rows: Vec<line_table::Row> = invoice
        .lines
        .iter()
        .map(|l| {
            [
                l.description.clone(),
                quantity(l.quantity_milli),
                money(l.unit_price_minor, currency),
                tax_rate(l.tax_rate_bp),
                money(l.net_minor, currency),
            ]
        })
        .collect();
    line_table::draw(&mut flow, &rows, brand);

    totals(&mut flow, invoice, payments);
    if let Some(terms) = invoice.terms.as_deref().filter(|t| !t.trim().is_empty()) {
        paragraph(&mut flow, "Terms", terms);
    }
    if let Some(notes) = invoice.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        paragraph(&mut flow, "Notes", notes);
    }
    flow.finish()
}

/// Company and document title, then who is billed beside number, dates,
/// status and balance due.
fn heading(flow: &mut Flow<'_>, invoice: &InvoiceDetail, branding: &Branding, brand: Rgb) {
    let summary = &invoice.summary;
    let currency = summary.currency.as_str();
    let top = MARGIN;

    let title_size = 18.0;
    let title = "Invoice".to_string();
    let title_width = flow.width(&title, Weight::Bold, title_size);
    flow.text_right(
        RIGHT,
        top + title_size,
        title_size,
        Weight::Bold,
        Rgb::TEXT,
        title,
    );

    let company_width = CONTENT_WIDTH - title_width - 24.0;
    let company = flow.wrap(
        &branding.company_name,
        Weight::Bold,
        title_size,
        company_width,
    );
    let mut left = top;
    for line in company {
        flow.text(
            LEFT,
            left + title_size,
            title_size,
            Weight::Bold,
            brand,
            line,
        );
        left += title_size * 1.25;
    }
    let rule_y = left.max(top + title_size * 1.25) + 8.0;
    flow.rule(rule_y, 1.5, brand);

    // Billed to, on the left half.
    let block_top = rule_y + 18.0;
    let mut left = block_top;
    flow.text(
        LEFT,
        left + 8.0,
        7.5,
        Weight::Bold,
        Rgb::MUTED,
        "BILLED TO".into(),
    );
    left += 14.0;
    for line in flow.wrap(
        &invoice.client_name,
        Weight::Bold,
        11.0,
        CONTENT_WIDTH * 0.5,
    ) {
        flow.text(LEFT, left + 11.0, 11.0, Weight::Bold, Rgb::TEXT, line);
        left += 14.0;
    }

    // Facts, on the right half: label, then the value ending at the margin.
    let status = InvoiceStatus::parse(&summary.status)
        .map(|s| s.label())
        .unwrap_or("Unknown");
    let balance = summary.total_minor - summary.paid_minor;
    let facts: [(&str, String, Weight); 5] = [
        ("Invoice number", summary.number.clone(), Weight::Regular),
        ("Issued", invoice.issue_date.clone(), Weight::Regular),
        ("Due", summary.due_date.clone(), Weight::Regular),
        ("Status", status.to_string(), Weight::Regular),
        ("Balance due", money(balance, currency), Weight::Bold),
    ];
    let label_x = LEFT + CONTENT_WIDTH * 0.56;
    let value_width = RIGHT - label_x - 80.0;
    let mut right = block_top;
    for (label, value, weight) in facts {
        flow.text(
            label_x,
            right + BODY,
            BODY,
            Weight::Regular,
            Rgb::MUTED,
            label.into(),
        );
        for line in flow.wrap(&value, weight, BODY, value_width) {
            flow.text_right(RIGHT, right + BODY, BODY, weight, Rgb::TEXT, line);
            right += BODY_LINE + 1.0;
        }
    }
    flow.advance(left.max(right) + 18.0 - flow.y());
}

/// One line of the totals block: a label right-aligned before the amount
/// column, the amount in it.
struct TotalLine {
    label: String,
    amount: String,
    weight: Weight,
    rule_above: bool,
}

/// Subtotal, tax per rate, total, payments applied, paid, balance due.
fn totals(flow: &mut Flow<'_>, invoice: &InvoiceDetail, payments: &[PdfPayment]) {
    let summary = &invoice.summary;
    let currency = summary.currency.as_str();
    let line = |label: String, amount: String| TotalLine {
        label,
        amount,
        weight: Weight::Regular,
        rule_above: false,
    };
    let mut lines = vec![line(
        "Subtotal".into(),
        money(invoice.subtotal_minor, currency),
    )];
    let (_, taxes) = document_lines(&invoice.lines, currency, invoice.tax_minor);
    for tax in taxes.as_array().into_iter().flatten() {
        let field = |name: &str| tax.get(name).and_then(Value::as_str).unwrap_or_default();
        lines.push(line(
            format!("Tax {}", field("rate")),
            field("amount").into(),
        ));
    }
    lines.push(TotalLine {
        label: "Total".into(),
        amount: money(summary.total_minor, currency),
        weight: Weight::Bold,
        rule_above: true,
    });
    for payment in payments {
        lines.push(line(
            format!("Payment {}, {}", payment.date, payment.method),
            money(payment.amount_minor, currency),
        ));
    }
    lines.push(line("Paid".into(), money(summary.paid_minor, currency)));
    lines.push(TotalLine {
        label: "Balance due".into(),
        amount: money(summary.total_minor - summary.paid_minor, currency),
        weight: Weight::Bold,
        rule_above: true,
    });

    // Amounts line up with the table's amount column, and widen it to the
    // left rather than wrap (up to a limit) when a total is long.
    let widest = lines
        .iter()
        .map(|l| flow.width(&l.amount, l.weight, BODY))
        .fold(AMOUNT_WIDTH - CELL_PADDING * 2.0, f32::max);
    let amount_width = widest.min(CONTENT_WIDTH * 0.4);
    let label_right = RIGHT - CELL_PADDING - amount_width - 12.0;
    let label_width = CONTENT_WIDTH * 0.42;
    let laid: Vec<(Vec<String>, Vec<String>, &TotalLine)> = lines
        .iter()
        .map(|l| {
            (
                flow.wrap(&l.label, l.weight, BODY, label_width),
                flow.wrap(&l.amount, l.weight, BODY, amount_width),
                l,
            )
        })
        .collect();
    let height_of = |label: &[String], amount: &[String]| {
        BODY_LINE * label.len().max(amount.len()) as f32 + 4.0
    };
    // The block stays together unless it is longer than a page.
    let block: f32 = 8.0 + laid.iter().map(|(l, a, _)| height_of(l, a)).sum::<f32>();
    if block <= flow.room_on_a_new_page() {
        flow.keep(block);
    }
    flow.advance(8.0);
    for (label, amount, total_line) in laid {
        let height = height_of(&label, &amount);
        flow.keep(height);
        let top = flow.y();
        if total_line.rule_above {
            flow.rule_from(
                label_right - label_width,
                RIGHT - label_right + label_width,
                top,
                0.75,
                Rgb::TEXT,
            );
        }
        for (i, text) in label.into_iter().enumerate() {
            let baseline = top + 2.0 + BODY + BODY_LINE * i as f32;
            flow.text_right(
                label_right,
                baseline,
                BODY,
                total_line.weight,
                Rgb::TEXT,
                text,
            );
        }
        for (i, text) in amount.into_iter().enumerate() {
            let baseline = top + 2.0 + BODY + BODY_LINE * i as f32;
            flow.text_right(
                RIGHT - CELL_PADDING,
                baseline,
                BODY,
                total_line.weight,
                Rgb::TEXT,
                text,
            );
        }
        flow.advance(height);
    }
}

/// A bold heading and a wrapped text below it; the heading stays with the
/// text's first line.
fn paragraph(flow: &mut Flow<'_>, heading: &str, text: &str) {
    let lines = flow.wrap(text, Weight::Regular, BODY, CONTENT_WIDTH);
    flow.advance(14.0);
    flow.keep(BODY_LINE * 2.0 + 2.0);
    let top = flow.y();
    flow.text(
        LEFT,
        top + 10.0,
        10.0,
        Weight::Bold,
        Rgb::TEXT,
        heading.into(),
    );
    flow.advance(BODY_LINE + 2.0);
    for line in lines {
        flow.keep(BODY_LINE);
        let top = flow.y();
        flow.text(LEFT, top + BODY, BODY, Weight::Regular, Rgb::TEXT, line);
        flow.advance(BODY_LINE);
    }
}
