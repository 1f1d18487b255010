//! The two typefaces an invoice is set in, DejaVu Sans and DejaVu Sans Bold
//! (compiled in from `templates/fonts/`), and what layout and embedding ask
//! of them: which glyph shows a character, and how wide a text is.
//!
//! Nothing here decides where text goes (`layout`) or writes PDF objects
//! (`embedded_font`).

use super::PdfError;

const REGULAR_TTF: &[u8] = include_bytes!("../../templates/fonts/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../../templates/fonts/DejaVuSans-Bold.ttf");

/// Shown in place of a character the font has no glyph for (DejaVu has no
/// CJK, for one). The text still copies as the character itself.
const REPLACEMENT: char = '\u{FFFD}';

/// Which of the two typefaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// One parsed typeface.
pub struct Typeface {
    face: ttf_parser::Face<'static>,
    data: &'static [u8],
    /// PostScript name without a subset tag.
    postscript_name: &'static str,
    units_per_em: f32,
    replacement: ttf_parser::GlyphId,
}

impl Typeface {
    fn parse(data: &'static [u8], postscript_name: &'static str) -> Result<Self, PdfError> {
        let face = ttf_parser::Face::parse(data, 0)
            .map_err(|e| PdfError::Font(format!("{postscript_name}: {e}")))?;
        let replacement = face
            .glyph_index(REPLACEMENT)
            .or_else(|| face.glyph_index('?'))
            .unwrap_or(ttf_parser::GlyphId(0));
        Ok(Self {
            units_per_em: f32::from(face.units_per_em()),
            face,
            data,
            postscript_name,
            replacement,
        })
    }

    /// The glyph that shows `c`: its own, or U+FFFD's when the font lacks it.
    pub fn glyph(&self, c: char) -> u16 {
        self.face.glyph_index(c).unwrap_or(self.replacement).0
    }

    /// Advance width of a glyph in thousandths of an em (PDF glyph space).
    pub fn advance(&self, glyph: u16) -> f32 {
        let units = self
            .face
            .glyph_hor_advance(ttf_parser::GlyphId(glyph))
            .unwrap_or(0);
        self.to_thousandths(i32::from(units))
    }

    /// Width of `text` set at `size` points, in points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        let thousandths: f32 = text.chars().map(|c| self.advance(self.glyph(c))).sum();
        thousandths * size / 1000.0
    }

    pub fn data(&self) -> &'static [u8] {
        self.data
    }

    pub fn postscript_name(&self) -> &'static str {
        self.postscript_name
    }

    /// Font-wide metrics in thousandths of an em, for the font descriptor.
    pub fn metrics(&self) -> Metrics {
        let bbox = self.face.global_bounding_box();
        let ascent = self.to_thousandths(i32::from(self.face.ascender()));
        Metrics {
            bbox: [
                self.to_thousandths(i32::from(bbox.x_min)),
                self.to_thousandths(i32::from(bbox.y_min)),
                self.to_thousandths(i32::from(bbox.x_max)),
                self.to_thousandths(i32::from(bbox.y_max)),
            ],
            ascent,
            descent: self.to_thousandths(i32::from(self.face.descender())),
            cap_height: self
                .face
                .capital_height()
                .map(|h| self.to_thousandths(i32::from(h)))
                .unwrap_or(ascent),
            italic_angle: self.face.italic_angle(),
            weight: self.face.weight().to_number(),
        }
    }

    fn to_thousandths(&self, units: i32) -> f32 {
        units as f32 * 1000.0 / self.units_per_em
    }
}

/// What a PDF font descriptor states about a typeface (thousandths of an em).
pub struct Metrics {
    pub bbox: [f32; 4],
    pub ascent: f32,
    pub descent: f32,
    pub cap_height: f32,
    pub italic_angle: f32,
    /// OS/2 weight class: 400 regular, 700 bold.
    pub weight: u16,
}

/// Both typefaces of an invoice.
pub struct Typefaces {
    regular: Typeface,
    bold: Typeface,
}

impl Typefaces {
    pub fn load() -> Result<Self, PdfError> {
        Ok(Self {
            regular: Typeface::parse(REGULAR_TTF, "DejaVuSans")?,
            bold: Typeface::parse(BOLD_TTF, "DejaVuSans-Bold")?,
        })
    }

    pub fn get(&self, weight: Weight) -> &Typeface {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greek_cyrillic_and_nordic_letters_have_glyphs() {
        let faces = Typefaces::load().unwrap();
        for weight in [Weight::Regular, Weight::Bold] {
            for c in "Ελληνική Εταιρεία ООО Ромашка Ångström Ørsted".chars()
            {
                let glyph = faces.get(weight).glyph(c);
                assert_ne!(glyph, faces.get(weight).replacement.0, "{c} in {weight:?}");
            }
        }
    }

    #[test]
    fn a_missing_character_becomes_the_replacement_glyph() {
        let faces = Typefaces::load().unwrap();
        let face = faces.get(Weight::Regular);
        assert_eq!(face.glyph('漢'), face.glyph(REPLACEMENT));
        assert_ne!(face.glyph('漢'), 0);
    }

    #[test]
    fn bold_is_wider_than_regular() {
        let faces = Typefaces::load().unwrap();
        let text = "Managed backup, 12 seats";
        let regular = faces.get(Weight::Regular).width(text, 10.0);
        let bold = faces.get(Weight::Bold).width(text, 10.0);
        assert!(regular > 50.0 && bold > regular, "{regular} {bold}");
    }
}
