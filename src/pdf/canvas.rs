//! What a laid-out page is made of: text runs, filled rectangles and rules,
//! in points measured from the page's top-left corner. `layout` produces
//! pages of these; `document` turns them into PDF content streams. No
//! positioning decisions and no PDF syntax live here.

use super::fonts::Weight;
use super::PdfError;

/// A4 in points.
pub const PAGE_WIDTH: f32 = 595.28;
pub const PAGE_HEIGHT: f32 = 841.89;

/// An sRGB colour, each channel 0.0–1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rgb(pub f32, pub f32, pub f32);

impl Rgb {
    pub const TEXT: Rgb = Rgb(0.13, 0.13, 0.13);
    pub const MUTED: Rgb = Rgb(0.42, 0.42, 0.42);
    pub const HAIRLINE: Rgb = Rgb(0.82, 0.82, 0.82);
    pub const SHADE: Rgb = Rgb(0.95, 0.95, 0.95);

    /// Parses the branding colour, `#rrggbb`.
    pub fn parse_hex(text: &str) -> Result<Self, PdfError> {
        let bad = || PdfError::BrandColor(text.to_string());
        let hex = text.strip_prefix('#').ok_or_else(bad)?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let channel = |i: usize| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map(|v| f32::from(v) / 255.0)
                .map_err(|_| bad())
        };
        Ok(Rgb(channel(0)?, channel(2)?, channel(4)?))
    }
}

/// One thing drawn on a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// A single line of text; `baseline` is measured from the top edge.
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        weight: Weight,
        color: Rgb,
        text: String,
    },
    /// A filled rectangle; `top` is measured from the top edge.
    Fill {
        x: f32,
        top: f32,
        width: f32,
        height: f32,
        color: Rgb,
    },
    /// A horizontal line at `y` from the top edge.
    Rule {
        x: f32,
        y: f32,
        length: f32,
        thickness: f32,
        color: Rgb,
    },
}

/// One page's marks, in drawing order.
#[derive(Debug, Default)]
pub struct Page {
    pub marks: Vec<Mark>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_colours_parse_as_hex_triplets() {
        assert_eq!(Rgb::parse_hex("#ff0000").unwrap(), Rgb(1.0, 0.0, 0.0));
        assert_eq!(Rgb::parse_hex("#000000").unwrap(), Rgb(0.0, 0.0, 0.0));
        for bad in ["ff0000", "#ff00", "#gg0000", "#ff00000", ""] {
            assert!(Rgb::parse_hex(bad).is_err(), "{bad}");
        }
    }
}
