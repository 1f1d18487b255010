//! A typeface as embedded in one PDF: the characters the document uses,
//! the text encoded for the text-showing operators, and the font objects
//! written at the end — a Type 0 font over a CIDFontType2 whose font file is
//! a subset holding only the used glyphs, with a ToUnicode map so every
//! character copies and searches as itself.
//!
//! Each distinct character gets its own CID, mapped to its glyph by a
//! CIDToGIDMap: two characters drawn with one glyph (or a character the
//! font lacks, drawn as U+FFFD) still copy as what they are.
//!
//! Measuring text and choosing glyphs is `fonts`; page content is `document`.

use std::collections::HashMap;

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;

use super::document::compress;
use super::fonts::Typeface;
use super::PdfError;

/// The character collection of the CIDs: the document's own numbering.
const IDENTITY: SystemInfo = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// The characters of one typeface used so far in a document.
pub struct EmbeddedFont<'a> {
    face: &'a Typeface,
    /// Original glyph id → glyph id in the subset (0 stays `.notdef`).
    remapper: GlyphRemapper,
    /// Character → its CID (1, 2, …; CID 0 is `.notdef`).
    cids: HashMap<char, u16>,
    /// Per CID: the character and its original glyph id.
    by_cid: Vec<(char, u16)>,
}

impl<'a> EmbeddedFont<'a> {
    pub fn new(face: &'a Typeface) -> Self {
        Self {
            face,
            remapper: GlyphRemapper::new(),
            cids: HashMap::new(),
            by_cid: vec![('\0', 0)],
        }
    }

    /// `text` as a string operand for the text-showing operators: two bytes
    /// per character, its CID.
    pub fn encode(&mut self, text: &str) -> Result<Vec<u8>, PdfError> {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            let cid = match self.cids.get(&c) {
                Some(cid) => *cid,
                None => {
                    let cid = u16::try_from(self.by_cid.len())
                        .map_err(|_| PdfError::TooManyCharacters)?;
                    let glyph = self.face.glyph(c);
                    self.remapper.remap(glyph);
                    self.by_cid.push((c, glyph));
                    self.cids.insert(c, cid);
                    cid
                }
            };
            bytes.extend_from_slice(&cid.to_be_bytes());
        }
        Ok(bytes)
    }

    /// Writes the font's objects; `type0` is the reference pages use.
    /// `next_ref` numbers the objects this adds.
    pub fn write(self, pdf: &mut Pdf, type0: Ref, next_ref: &mut Ref) -> Result<(), PdfError> {
        let cid_font = next_ref.bump();
        let descriptor = next_ref.bump();
        let cid_to_gid = next_ref.bump();
        let to_unicode = next_ref.bump();
        let font_file = next_ref.bump();

        let subset_name = format!("{}+{}", self.subset_tag(), self.face.postscript_name());
        let base_font = Name(subset_name.as_bytes());

        pdf.type0_font(type0)
            .base_font(base_font)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_font)
            .to_unicode(to_unicode);

        let widths: Vec<f32> = self
            .by_cid
            .iter()
            .map(|(_, glyph)| self.face.advance(*glyph))
            .collect();
        let mut cid = pdf.cid_font(cid_font);
        cid.subtype(CidFontType::Type2)
            .base_font(base_font)
            .system_info(IDENTITY)
            .font_descriptor(descriptor)
            .cid_to_gid_map_stream(cid_to_gid);
        cid.widths().consecutive(0, widths);
        cid.finish();

        let metrics = self.face.metrics();
        let [x_min, y_min, x_max, y_max] = metrics.bbox;
        pdf.font_descriptor(descriptor)
            .name(base_font)
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(x_min, y_min, x_max, y_max))
            .italic_angle(metrics.italic_angle)
            .ascent(metrics.ascent)
            .descent(metrics.descent)
            .cap_height(metrics.cap_height)
            // TrueType states no stem width; the usual estimate from the weight class.
            .stem_v(10.0 + 0.244 * (f32::from(metrics.weight) - 50.0))
            .font_file2(font_file);

        let mut map = Vec::with_capacity(self.by_cid.len() * 2);
        for (_, glyph) in &self.by_cid {
            let subset_glyph = self.remapper.get(*glyph).unwrap_or(0);
            map.extend_from_slice(&subset_glyph.to_be_bytes());
        }
        pdf.stream(cid_to_gid, &compress(&map))
            .filter(Filter::FlateDecode);

        let mut cmap = UnicodeCmap::new(Name(b"Postdesk-UTF16"), IDENTITY);
        for (cid, (c, _)) in self.by_cid.iter().enumerate().skip(1) {
            if let Ok(cid) = u16::try_from(cid) {
                cmap.pair(cid, *c);
            }
        }
        pdf.stream(to_unicode, &compress(cmap.finish().as_slice()))
            .filter(Filter::FlateDecode);

        let subset = subsetter::subset(self.face.data(), 0, &self.remapper)
            .map_err(|e| PdfError::Font(format!("{}: {e}", self.face.postscript_name())))?;
        pdf.stream(font_file, &compress(&subset))
            .filter(Filter::FlateDecode);
        Ok(())
    }

    /// Six capital letters naming this subset (PDF 32000-1 §9.6.4), derived
    /// from the characters it holds so the same invoice gets the same name.
    fn subset_tag(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for (c, _) in &self.by_cid {
            for byte in u32::from(*c).to_be_bytes() {
                hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
            }
        }
        (0..6)
            .map(|i| char::from(b'A' + ((hash >> (i * 5)) % 26) as u8))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fonts::{Typefaces, Weight};
    use super::*;

    #[test]
    fn each_distinct_character_gets_one_cid() {
        let faces = Typefaces::load().unwrap();
        let mut font = EmbeddedFont::new(faces.get(Weight::Regular));
        assert_eq!(font.encode("abba").unwrap(), vec![0, 1, 0, 2, 0, 2, 0, 1]);
        assert_eq!(font.encode("Ωa").unwrap(), vec![0, 3, 0, 1]);
        let chars: Vec<char> = font.by_cid.iter().skip(1).map(|(c, _)| *c).collect();
        assert_eq!(chars, vec!['a', 'b', 'Ω']);
        assert_eq!(font.subset_tag().len(), 6);
        assert!(font.subset_tag().bytes().all(|b| b.is_ascii_uppercase()));
    }

    #[test]
    fn characters_the_font_lacks_share_a_glyph_but_keep_their_own_cid() {
        let faces = Typefaces::load().unwrap();
        let mut font = EmbeddedFont::new(faces.get(Weight::Regular));
        assert_eq!(font.encode("漢字").unwrap(), vec![0, 1, 0, 2]);
        assert_eq!(font.by_cid[1].1, font.by_cid[2].1);
        assert_eq!(font.by_cid[1].0, '漢');
    }
}
