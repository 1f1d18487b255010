//! Line breaking: a text becomes the lines that fit a given width when set
//! in a given typeface and size. Greedy, between words; a word wider than
//! the whole line is broken between characters so nothing runs outside its
//! box. Hyphenation and justification are deliberately absent.

use super::fonts::Typeface;

/// Breaks `text` into lines no wider than `width` points at `size` points.
/// Line breaks in the text are kept (a blank line stays blank); other
/// runs of whitespace and control characters become one space. Always at
/// least one line, which is empty for an empty text.
pub fn wrap(text: &str, face: &Typeface, size: f32, width: f32) -> Vec<String> {
    let space = face.width(" ", size);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in paragraph.split(|c: char| c.is_whitespace() || c.is_control()) {
            if word.is_empty() {
                continue;
            }
            let word_width = face.width(word, size);
            let needed = if line.is_empty() {
                word_width
            } else {
                line_width + space + word_width
            };
            if needed <= width {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                line_width = needed;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if word_width <= width {
                line.push_str(word);
                line_width = word_width;
            } else {
                let mut pieces = break_word(word, face, size, width);
                let last = pieces.pop().unwrap_or_default();
                lines.extend(pieces);
                line_width = face.width(&last, size);
                line = last;
            }
        }
        lines.push(line);
    }
    lines
}

/// Cuts a word wider than `width` into pieces that fit (at least one
/// character each, so a very narrow width still makes progress).
fn break_word(word: &str, face: &Typeface, size: f32, width: f32) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut piece_width = 0.0;
    for c in word.chars() {
        let mut buf = [0u8; 4];
        let c_width = face.width(c.encode_utf8(&mut buf), size);
        if !piece.is_empty() && piece_width + c_width > width {
            pieces.push(std::mem::take(&mut piece));
            piece_width = 0.0;
        }
        piece.push(c);
        piece_width += c_width;
    }
    pieces.push(piece);
    pieces
}

#[cfg(test)]
mod tests {
    use super::super::fonts::{Typefaces, Weight};
    use super::*;

    #[test]
    fn lines_fit_the_width_and_keep_every_word_in_order() {
        let faces = Typefaces::load().unwrap();
        let face = faces.get(Weight::Regular);
        let text = "Quarterly maintenance of the office network, including firewall \
                    rule review, switch firmware updates and a backup restore test";
        let lines = wrap(text, face, 9.0, 120.0);
        assert!(lines.len() > 3, "{lines:?}");
        for line in &lines {
            assert!(face.width(line, 9.0) <= 120.0, "{line}");
        }
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    #[test]
    fn a_word_longer_than_the_line_is_cut_not_overflowed() {
        let faces = Typefaces::load().unwrap();
        let face = faces.get(Weight::Regular);
        let word = "x".repeat(200);
        let lines = wrap(&format!("see {word} here"), face, 9.0, 100.0);
        assert_eq!(lines.first().map(String::as_str), Some("see"));
        for line in &lines {
            assert!(face.width(line, 9.0) <= 100.0, "{line}");
        }
        assert_eq!(lines.concat().matches('x').count(), 200);
    }

    #[test]
    fn hard_breaks_stay_and_empty_text_is_one_empty_line() {
        let faces = Typefaces::load().unwrap();
        let face = faces.get(Weight::Regular);
        assert_eq!(wrap("", face, 9.0, 100.0), vec![String::new()]);
        assert_eq!(
            wrap("Net 30\n\nBank:\tIBAN", face, 9.0, 300.0),
            vec!["Net 30", "", "Bank: IBAN"]
        );
    }
}
