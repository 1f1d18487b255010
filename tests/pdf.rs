//! Invoice PDFs read back with poppler (`pdftotext`, `pdffonts`, `pdfinfo`
//! from Debian's `poppler-utils`, which tests/harness/install-deps.sh
//! installs): every line item once, printed totals equal to the sum of the
//! printed lines, non-Latin names as text, every font embedded, long
//! invoices over several pages. No database: invoices are built by hand.
//! A missing poppler tool fails the test; it is never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use postdesk::config::Branding;
use postdesk::db::invoices::{InvoiceDetail, InvoiceLineRow, InvoiceSummary};
use postdesk::domain::{price_line, totals, Currency, Money, Quantity, TaxRate, TaxRounding};
use postdesk::pdf::{render_invoice, PdfPayment};

/// (description, quantity, unit price, tax rate) as a person types them.
type Line<'a> = (&'a str, &'a str, &'a str, &'a str);

fn invoice(client: &str, lines: &[Line<'_>], paid_minor: i64) -> InvoiceDetail {
    let eur = Currency::parse("EUR").unwrap();
    let mut rows = Vec::new();
    let mut priced = Vec::new();
    for (description, quantity, unit_price, rate) in lines {
        let quantity = Quantity::parse(quantity).unwrap();
        let unit_price = Money::parse(unit_price, eur).unwrap();
        let line = price_line(quantity, unit_price, TaxRate::parse(rate).unwrap()).unwrap();
        rows.push(InvoiceLineRow {
            description: description.to_string(),
            quantity_milli: quantity.thousandths(),
            unit_price_minor: unit_price.minor(),
            tax_rate_bp: line.rate.basis_points(),
            net_minor: line.net.minor(),
            tax_minor: line.tax.minor(),
        });
        priced.push(line);
    }
    let totals = totals(&priced, eur, TaxRounding::PerLine).unwrap();
    InvoiceDetail {
        summary: InvoiceSummary {
            id: 1,
            number: "INV-2026-0042".into(),
            client_id: 7,
            status: "partial".into(),
            currency: "EUR".into(),
            due_date: "2026-12-01".into(),
            total_minor: totals.total.minor(),
            paid_minor,
        },
        client_name: client.into(),
        issue_date: "2026-11-01".into(),
        subtotal_minor: totals.subtotal.minor(),
        tax_minor: totals.tax.minor(),
        notes: Some("Thank you for your business.\nQuestions: billing@example.test".into()),
        terms: Some("Net 30. Bank transfer to IBAN DE00 0000 0000 0000 0000 00.".into()),
        lines: rows,
    }
}

fn branding() -> Branding {
    Branding {
        company_name: "Ελληνική Εταιρεία IT".into(),
        logo_url: Some("https://example.test/logo.png".into()),
        primary_color: "#1f6feb".into(),
        footer: Some("Ελληνική Εταιρεία IT · Odos 1 · Athens · VAT EL123456789".into()),
        subject_prefix: None,
    }
}

/// A distinct description per line: "L001" is no substring of "L010".
fn numbered_lines(count: usize) -> Vec<String> {
    (1..=count)
        .map(|i| format!("Managed endpoint L{i:03} monitoring"))
        .collect()
}

struct Rendered {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: usize,
}

fn render(invoice: &InvoiceDetail, payments: &[PdfPayment]) -> Rendered {
    let pdf = render_invoice(invoice, payments, &branding()).expect("render");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf");
    std::fs::write(&path, &pdf).unwrap();
    Rendered {
        _dir: dir,
        path,
        bytes: pdf.len(),
    }
}

/// Runs a poppler tool; a missing tool is a failure that says what to install.
fn poppler(tool: &str, args: &[&str]) -> String {
    let output = match Command::new(tool).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` not found: install Debian's poppler-utils \
             (bash tests/harness/install-deps.sh does)"
        ),
        Err(e) => panic!("running {tool}: {e}"),
    };
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("poppler prints UTF-8")
}

fn path_str(pdf: &Path) -> &str {
    pdf.to_str().expect("temp paths are UTF-8")
}

fn text_of(pdf: &Path) -> String {
    poppler(
        "pdftotext",
        &["-layout", "-enc", "UTF-8", path_str(pdf), "-"],
    )
}

fn page_count(pdf: &Path) -> usize {
    poppler("pdfinfo", &[path_str(pdf)])
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo prints Pages:")
}

/// The "n / m" of each page, spaces removed (pdftotext -layout may drop
/// narrow ones): what ends each page's last non-empty line, after the wide
/// gap that separates it from the footer text.
fn page_numbers(text: &str) -> Vec<String> {
    text.split('\u{c}')
        .filter_map(|page| page.lines().rev().find(|l| !l.trim().is_empty()))
        .filter_map(|line| line.trim().rsplit("   ").next())
        .map(|n| n.split_whitespace().collect::<String>())
        .collect()
}

/// "1,234.50 EUR" → 123450.
fn minor_of(amount: &str) -> i64 {
    let digits: String = amount
        .trim()
        .trim_end_matches("EUR")
        .trim()
        .chars()
        .filter(|c| *c != ',')
        .collect();
    Money::parse(&digits, Currency::parse("EUR").unwrap())
        .unwrap_or_else(|e| panic!("`{amount}` is not an amount: {e}"))
        .minor()
}

/// The last amount ("… 1,234.50 EUR") on a text line.
fn last_amount(line: &str) -> Option<i64> {
    let end = line.rfind(" EUR")?;
    let start = line[..end].rfind(' ').map_or(0, |i| i + 1);
    Some(minor_of(&line[start..end]))
}

/// The amount on the line whose text starts with `label` (after indentation).
fn amount_labelled(text: &str, label: &str) -> i64 {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with(label))
        .find_map(last_amount)
        .unwrap_or_else(|| panic!("no `{label}` line with an amount in:\n{text}"))
}

#[test]
fn each_line_item_is_printed_once_and_the_totals_are_their_sum() {
    let owned = numbered_lines(5);
    let lines: Vec<Line<'_>> = vec![
        (&owned[0], "12", "45.00", "19"),
        (&owned[1], "1.5", "85", "19"),
        (&owned[2], "3", "19.99", "7"),
        (&owned[3], "0.25", "120", "19"),
        (&owned[4], "1", "1250.00", "0"),
        ("Ångström Ørsted on-site visit", "2", "99.50", "19"),
    ];
    let invoice = invoice("ООО Ромашка", &lines, 50_000);
    let payments = [PdfPayment {
        date: "2026-11-05".into(),
        method: "Bank transfer".into(),
        amount_minor: 50_000,
    }];
    let rendered = render(&invoice, &payments);
    let text = text_of(&rendered.path);

    let mut printed_nets = 0;
    for (description, ..) in &lines {
        assert_eq!(
            text.matches(description).count(),
            1,
            "`{description}` once in:\n{text}"
        );
        let row = text.lines().find(|l| l.contains(description)).unwrap();
        printed_nets += last_amount(row).unwrap_or_else(|| panic!("no amount in `{row}`"));
    }
    let expected_net: i64 = invoice.lines.iter().map(|l| l.net_minor).sum();
    let expected_tax: i64 = invoice.lines.iter().map(|l| l.tax_minor).sum();
    assert_eq!(printed_nets, expected_net, "the rows' amounts");
    let subtotal = amount_labelled(&text, "Subtotal");
    assert_eq!(subtotal, printed_nets, "subtotal is the sum of the rows");
    let taxes: i64 = text
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("Tax "))
        .filter_map(last_amount)
        .sum();
    assert_eq!(taxes, expected_tax, "tax lines");
    let total = amount_labelled(&text, "Total");
    assert_eq!(total, subtotal + taxes, "total = subtotal + tax");
    assert_eq!(total, invoice.summary.total_minor);
    assert_eq!(amount_labelled(&text, "Paid"), 50_000);
    assert_eq!(amount_labelled(&text, "Balance due"), total - 50_000);
    assert!(text.contains("Payment 2026-11-05, Bank transfer"), "{text}");

    for expected in [
        "INV-2026-0042",
        "2026-11-01",
        "2026-12-01",
        "Partially paid",
        "Net 30. Bank transfer",
        "Thank you for your business.",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{text}");
    }
    assert!(page_numbers(&text).contains(&"1/1".to_string()), "{text}");
    assert_eq!(page_count(&rendered.path), 1);
    assert!(rendered.bytes < 100_000, "{} bytes", rendered.bytes);
}

#[test]
fn greek_cyrillic_and_nordic_names_come_out_as_text() {
    for client in ["Ελληνική Εταιρεία", "ООО Ромашка", "Ångström Ørsted"]
    {
        let invoice = invoice(client, &[("Helpdesk hours", "1", "10", "19")], 0);
        let rendered = render(&invoice, &[]);
        let text = text_of(&rendered.path);
        assert!(text.contains(client), "`{client}` in:\n{text}");
        assert!(text.contains("Ελληνική Εταιρεία IT"), "the company name");
    }
}

#[test]
fn every_font_is_embedded_subset_and_mapped_to_unicode() {
    let invoice = invoice("ООО Ромашка", &[("Helpdesk hours", "1", "10", "19")], 0);
    let rendered = render(&invoice, &[]);
    let listing = poppler("pdffonts", &[path_str(&rendered.path)]);
    // name type… encoding emb sub uni object-id generation
    let fonts: Vec<Vec<&str>> = listing
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 7)
        .collect();
    assert_eq!(fonts.len(), 2, "regular and bold:\n{listing}");
    for cols in fonts {
        let n = cols.len();
        let (emb, sub, uni) = (cols[n - 5], cols[n - 4], cols[n - 3]);
        assert_eq!(emb, "yes", "embedded:\n{listing}");
        assert_eq!(sub, "yes", "subset:\n{listing}");
        assert_eq!(uni, "yes", "ToUnicode:\n{listing}");
        assert!(cols[0].contains("+DejaVuSans"), "{listing}");
    }
}

#[test]
fn sixty_lines_run_over_several_pages_each_line_once_with_the_header_repeated() {
    let owned = numbered_lines(60);
    let lines: Vec<Line<'_>> = owned
        .iter()
        .map(|d| (d.as_str(), "2", "35.00", "19"))
        .collect();
    let invoice = invoice("ООО Ромашка", &lines, 0);
    let rendered = render(&invoice, &[]);
    let text = text_of(&rendered.path);
    let pages = page_count(&rendered.path);
    assert!(pages >= 2, "{pages} page(s)");
    for description in &owned {
        assert_eq!(
            text.matches(description.as_str()).count(),
            1,
            "`{description}`"
        );
    }
    // pdftotext ends each page with a form feed.
    let page_texts: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(page_texts.len(), pages);
    for (i, page) in page_texts.iter().enumerate() {
        let has_rows = owned.iter().any(|d| page.contains(d.as_str()));
        let header_rows = page
            .lines()
            .filter(|l| l.contains("Description") && l.contains("Unit price"))
            .count();
        assert_eq!(
            header_rows,
            usize::from(has_rows),
            "page {}: the table header opens the rows on every page:\n{page}",
            i + 1
        );
    }
    let numbers = page_numbers(&text);
    let expected: Vec<String> = (1..=pages).map(|n| format!("{n}/{pages}")).collect();
    assert_eq!(numbers, expected, "n / m on every page");
    assert_eq!(
        amount_labelled(&text, "Subtotal"),
        invoice.lines.iter().map(|l| l.net_minor).sum::<i64>()
    );
}

#[test]
fn a_description_longer_than_a_page_is_split_across_pages_not_lost() {
    let words: Vec<String> = (1..=1200).map(|i| format!("w{i:04}")).collect();
    let long = words.join(" ");
    let lines: Vec<Line<'_>> = vec![
        ("Short first line", "1", "10", "19"),
        (&long, "1", "10", "19"),
        ("Short last line", "1", "10", "19"),
    ];
    let invoice = invoice("Ångström Ørsted", &lines, 0);
    let rendered = render(&invoice, &[]);
    let text = text_of(&rendered.path);
    assert!(page_count(&rendered.path) >= 2);
    for word in &words {
        assert_eq!(text.matches(word.as_str()).count(), 1, "`{word}`");
    }
    assert_eq!(text.matches("Short last line").count(), 1);
}

#[test]
fn the_same_invoice_renders_to_the_same_bytes() {
    let invoice = invoice("ООО Ромашка", &[("Helpdesk hours", "1", "10", "19")], 0);
    let first = render_invoice(&invoice, &[], &branding()).unwrap();
    let second = render_invoice(&invoice, &[], &branding()).unwrap();
    assert_eq!(first, second);
}

#[test]
fn a_branding_colour_that_is_not_hex_is_an_error() {
    let invoice = invoice("ООО Ромашка", &[("Helpdesk hours", "1", "10", "19")], 0);
    let mut branding = branding();
    branding.primary_color = "blue".into();
    assert!(render_invoice(&invoice, &[], &branding).is_err());
}
