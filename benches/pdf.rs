//! Invoice PDF rendering time (not a test): `cargo bench --bench pdf`.
//! Renders a 1-page invoice (8 lines) and a 20-page one, many times each,
//! and prints median and p99 wall time, the page count and the size. The
//! results and the command go into docs/BENCHMARKS.md ("Invoice PDF").

use std::time::{Duration, Instant};

use postdesk::config::Branding;
use postdesk::db::invoices::{InvoiceDetail, InvoiceLineRow, InvoiceSummary};
use postdesk::pdf::{render_invoice, PdfPayment};

/// Line items that fill 20 pages (single-line rows).
const TWENTY_PAGE_LINES: usize = 574;

fn invoice(line_count: usize) -> InvoiceDetail {
    let lines: Vec<InvoiceLineRow> = (0..line_count)
        .map(|i| {
            let net_minor = 4_500 * (1 + (i as i64 % 7));
            InvoiceLineRow {
                description: if i % 5 == 0 {
                    format!("Managed workplace L{i:04}, Ελληνική Εταιρεία, ООО Ромашка")
                } else {
                    format!("Endpoint monitoring L{i:04}")
                },
                quantity_milli: 1_000 * (1 + (i as i64 % 7)),
                unit_price_minor: 4_500,
                tax_rate_bp: 1_900,
                net_minor,
                tax_minor: net_minor * 19 / 100,
            }
        })
        .collect();
    let subtotal: i64 = lines.iter().map(|l| l.net_minor).sum();
    let tax: i64 = lines.iter().map(|l| l.tax_minor).sum();
    InvoiceDetail {
        summary: InvoiceSummary {
            id: 1,
            number: "INV-2026-0042".into(),
            client_id: 7,
            status: "sent".into(),
            currency: "EUR".into(),
            due_date: "2026-12-01".into(),
            total_minor: subtotal + tax,
            paid_minor: 10_000,
        },
        client_name: "Ångström Ørsted AB".into(),
        issue_date: "2026-11-01".into(),
        subtotal_minor: subtotal,
        tax_minor: tax,
        notes: Some("Thank you for your business.".into()),
        terms: Some("Net 30. Bank transfer to IBAN DE00 0000 0000 0000 0000 00.".into()),
        lines,
    }
}

fn branding() -> Branding {
    Branding {
        company_name: "Example IT Services".into(),
        logo_url: None,
        primary_color: "#1f6feb".into(),
        footer: Some("Example IT Services · 1 Main Street · VAT DE123456789".into()),
        subject_prefix: None,
    }
}

/// Pages of a PDF: `/Type /Page` dictionaries (not the `/Pages` tree).
fn pages_in(pdf: &[u8]) -> usize {
    let needle = b"/Type /Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| &w[..needle.len()] == needle && w[needle.len()] != b's')
        .count()
}

fn measure(name: &str, line_count: usize, runs: usize) {
    let invoice = invoice(line_count);
    let branding = branding();
    let payments = [PdfPayment {
        date: "2026-11-05".into(),
        method: "Card".into(),
        amount_minor: 10_000,
    }];
    let render = || render_invoice(&invoice, &payments, &branding).expect("render");
    let pdf = render();
    for _ in 0..3 {
        render();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let pdf = render();
            let elapsed = start.elapsed();
            std::hint::black_box(pdf);
            elapsed
        })
        .collect();
    times.sort();
    let percentile = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name}: {line_count} lines, {} page(s), {} bytes; {runs} runs: median {:.2} ms, p99 {:.2} ms",
        pages_in(&pdf),
        pdf.len(),
        percentile(0.5).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    measure("1-page invoice", 8, 300);
    measure("20-page invoice", TWENTY_PAGE_LINES, 50);
}
