//! Invoice PDFs, in pure Rust: [`render_invoice`] turns an invoice, the
//! payments applied to it and the branding into the bytes of an A4 PDF.
//!
//! Text is real text: two embedded, subset TrueType fonts (DejaVu Sans and
//! Bold, covering Latin, Greek and Cyrillic) with a ToUnicode map, so it can
//! be selected, copied and searched. Long invoices break across pages with
//! the table header repeated; every page carries the branding footer and
//! "n / m".
//!
//! ```text
//!  InvoiceDetail ─► layout ─► flow / line_table ─► pages of canvas marks
//!                    (what, in which order)  (where)        │
//!                                                           ▼
//!                               document (+ embedded_font, fonts) ─► PDF bytes
//! ```
//!
//! Nothing here reads the database, the clock or the network (the logo is a
//! URL and is not fetched); callers map their rows to the types below.

mod canvas;
mod document;
mod embedded_font;
mod flow;
mod fonts;
mod layout;
mod line_table;
mod wrap;

use crate::config::Branding;
use crate::db::invoices::InvoiceDetail;

/// A payment applied to the invoice, as the PDF lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfPayment {
    /// As shown, e.g. "2026-11-05".
    pub date: String,
    /// As shown, e.g. "Card" or "Bank transfer".
    pub method: String,
    /// In minor units of the invoice's currency.
    pub amount_minor: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// A compiled-in font could not be read or subset: a bug, not bad input.
    #[error("embedded font: {0}")]
    Font(String),
    #[error("branding colour `{0}` is not a #rrggbb colour")]
    BrandColor(String),
    #[error("more than 65,535 distinct characters in one typeface")]
    TooManyCharacters,
    #[error("too many pages")]
    TooManyPages,
}

/// Renders the invoice as a PDF. The figures are the invoice's stored ones,
/// formatted as on the invoice page; `payments` are listed above the amount
/// paid (which is `invoice.summary.paid_minor`, as on the page).
pub fn render_invoice(
    invoice: &InvoiceDetail,
    payments: &[PdfPayment],
    branding: &Branding,
) -> Result<Vec<u8>, PdfError> {
    let faces = fonts::Typefaces::load()?;
    let brand = canvas::Rgb::parse_hex(&branding.primary_color)?;
    let pages = layout::invoice_pages(invoice, payments, branding, brand, &faces);
    document::write(
        &pages,
        &faces,
        &format!("Invoice {}", invoice.summary.number),
    )
}

/// What [`render_invoice`] draws, as reviewable text: page by page, one line
/// per mark with its position and size in points, weight, colour (`#rrggbb`)
/// and text. The PDF's content streams are these marks in PDF syntax (with
/// the text as glyph ids of the subset fonts); snapshot tests compare this.
pub fn invoice_outline(
    invoice: &InvoiceDetail,
    payments: &[PdfPayment],
    branding: &Branding,
) -> Result<String, PdfError> {
    use std::fmt::Write as _;

    let faces = fonts::Typefaces::load()?;
    let brand = canvas::Rgb::parse_hex(&branding.primary_color)?;
    let pages = layout::invoice_pages(invoice, payments, branding, brand, &faces);
    let hex = |c: canvas::Rgb| {
        let channel = |v: f32| (v * 255.0).round() as u8;
        format!(
            "#{:02x}{:02x}{:02x}",
            channel(c.0),
            channel(c.1),
            channel(c.2)
        )
    };
    let mut out = String::new();
    for (i, page) in pages.iter().enumerate() {
        let _ = writeln!(out, "page {}", i + 1);
        for mark in &page.marks {
            let _ = match mark {
                canvas::Mark::Text {
                    x,
                    baseline,
                    size,
                    weight,
                    color,
                    text,
                } => writeln!(
                    out,
                    "  text x={x:.1} y={baseline:.1} size={size:.1} {} {} {text:?}",
                    match weight {
                        fonts::Weight::Regular => "regular",
                        fonts::Weight::Bold => "bold",
                    },
                    hex(*color)
                ),
                canvas::Mark::Fill {
                    x,
                    top,
                    width,
                    height,
                    color,
                } => writeln!(
                    out,
                    "  fill x={x:.1} y={top:.1} w={width:.1} h={height:.1} {}",
                    hex(*color)
                ),
                canvas::Mark::Rule {
                    x,
                    y,
                    length,
                    thickness,
                    color,
                } => writeln!(
                    out,
                    "  rule x={x:.1} y={y:.1} len={length:.1} width={thickness:.1} {}",
                    hex(*color)
                ),
            };
        }
    }
    Ok(out)
}
