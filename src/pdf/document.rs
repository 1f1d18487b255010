//! Laid-out pages to PDF bytes: the catalog and page tree, one compressed
//! content stream per page, the document title, and the two embedded fonts.
//! This is the only file that writes PDF page content; it makes no layout
//! decisions (`layout`) and knows nothing of invoices.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::canvas::{Mark, Page, Rgb, PAGE_HEIGHT, PAGE_WIDTH};
use super::embedded_font::EmbeddedFont;
use super::fonts::{Typefaces, Weight};
use super::PdfError;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// zlib level: 6 is the usual balance; the streams are small.
const COMPRESSION_LEVEL: u8 = 6;

/// Deflates a stream's data (for `/Filter /FlateDecode`).
pub fn compress(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, COMPRESSION_LEVEL)
}

/// Writes `pages` as a PDF whose document title is `title`.
pub fn write(pages: &[Page], faces: &Typefaces, title: &str) -> Result<Vec<u8>, PdfError> {
    let mut next_ref = Ref::new(1);
    let catalog = next_ref.bump();
    let page_tree = next_ref.bump();
    let info = next_ref.bump();
    let regular_font = next_ref.bump();
    let bold_font = next_ref.bump();
    let page_refs: Vec<(Ref, Ref)> = pages
        .iter()
        .map(|_| (next_ref.bump(), next_ref.bump()))
        .collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(page_tree);
    pdf.document_info(info)
        .title(TextStr(title))
        .producer(TextStr("Postdesk"));
    pdf.pages(page_tree)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(i32::try_from(pages.len()).map_err(|_| PdfError::TooManyPages)?);

    let mut regular = EmbeddedFont::new(faces.get(Weight::Regular));
    let mut bold = EmbeddedFont::new(faces.get(Weight::Bold));
    for (page, (page_ref, content_ref)) in pages.iter().zip(&page_refs) {
        let content = page_content(page, &mut regular, &mut bold)?;
        pdf.stream(*content_ref, &compress(&content))
            .filter(Filter::FlateDecode);
        let mut page_writer = pdf.page(*page_ref);
        page_writer
            .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(page_tree)
            .contents(*content_ref);
        page_writer
            .resources()
            .fonts()
            .pair(REGULAR, regular_font)
            .pair(BOLD, bold_font);
        page_writer.finish();
    }
    regular.write(&mut pdf, regular_font, &mut next_ref)?;
    bold.write(&mut pdf, bold_font, &mut next_ref)?;
    Ok(pdf.finish())
}

/// One page's content stream (uncompressed).
fn page_content<'f>(
    page: &Page,
    regular: &mut EmbeddedFont<'f>,
    bold: &mut EmbeddedFont<'f>,
) -> Result<Vec<u8>, PdfError> {
    let mut content = Content::new();
    let mut fill: Option<Rgb> = None;
    let mut set_fill = |content: &mut Content, color: Rgb| {
        if fill != Some(color) {
            content.set_fill_rgb(color.0, color.1, color.2);
            fill = Some(color);
        }
    };
    for mark in &page.marks {
        match mark {
            Mark::Text {
                x,
                baseline,
                size,
                weight,
                color,
                text,
            } => {
                let (name, font) = match weight {
                    Weight::Regular => (REGULAR, &mut *regular),
                    Weight::Bold => (BOLD, &mut *bold),
                };
                let encoded = font.encode(text)?;
                set_fill(&mut content, *color);
                content
                    .begin_text()
                    .set_font(name, *size)
                    .next_line(*x, PAGE_HEIGHT - baseline)
                    .show(Str(&encoded))
                    .end_text();
            }
            Mark::Fill {
                x,
                top,
                width,
                height,
                color,
            } => {
                set_fill(&mut content, *color);
                content
                    .rect(*x, PAGE_HEIGHT - top - height, *width, *height)
                    .fill_nonzero();
            }
            Mark::Rule {
                x,
                y,
                length,
                thickness,
                color,
            } => {
                content
                    .set_stroke_rgb(color.0, color.1, color.2)
                    .set_line_width(*thickness)
                    .move_to(*x, PAGE_HEIGHT - y)
                    .line_to(x + length, PAGE_HEIGHT - y)
                    .stroke();
            }
        }
    }
    Ok(content.finish().into_vec())
}
