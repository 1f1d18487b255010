//! The plain text of an HTML-only mail, for reply trimming, search and the
//! text view: `<blockquote>` history becomes `> ` quoted lines, so the trimmer
//! treats it as the quote it is; layout tables read as running text. The HTML
//! itself is kept (sanitized) beside it. No MIME handling lives here.

/// Wide enough that prose is never re-wrapped; quoting still works per line.
const WIDTH: usize = 1_000;
/// Beyond these the renderer's cost grows too fast (deep nesting is how a
/// hostile mail would stall ingest); the caller's flat conversion is used.
const MAX_HTML_BYTES: usize = 512 * 1024;
const MAX_DEPTH: usize = 100;

/// Plain text of `html`; `None` when the renderer gives up or the HTML is too
/// large or too deeply nested for it (the caller then keeps the parser's own
/// conversion).
pub fn html_to_text(html: &str) -> Option<String> {
    if html.len() > MAX_HTML_BYTES || nesting_depth(html) > MAX_DEPTH {
        return None;
    }
    let text = html2text::config::plain_no_decorate()
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), WIDTH)
        .ok()?;
    // Trailing spaces of padded lines carry nothing.
    Some(
        text.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string(),
    )
}

/// An upper estimate of how deeply `html`'s elements nest: opening tags
/// minus closing ones, at their highest (void elements never close).
fn nesting_depth(html: &str) -> usize {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr",
    ];
    let bytes = html.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset + 1;
        i = start;
        let closing = bytes.get(start) == Some(&b'/');
        let name_start = if closing { start + 1 } else { start };
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name = &html[name_start..name_start + name_len];
        if closing {
            depth = depth.saturating_sub(1);
        } else if !VOID.iter().any(|v| v.eq_ignore_ascii_case(name)) {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockquotes_become_quoted_lines() {
        let text = html_to_text(
            "<div>Fixed, thanks.</div><blockquote type=\"cite\"><div>We opened T-1</div><div>Priority: low</div></blockquote>",
        )
        .unwrap();
        assert_eq!(text, "Fixed, thanks.\n\n> We opened T-1\n> Priority: low");
    }

    #[test]
    fn nested_quotes_are_quoted_twice_and_tables_read_as_text() {
        let text = html_to_text(
            "<p>Top</p><blockquote><p>Middle</p><blockquote><p>Bottom</p></blockquote></blockquote><table><tr><td>Cell A</td><td>Cell B</td></tr></table>",
        )
        .unwrap();
        assert!(text.starts_with("Top\n"), "{text}");
        assert!(text.contains("> Middle"), "{text}");
        assert!(text.contains("> > Bottom"), "{text}");
        assert!(text.contains("Cell A") && text.contains("Cell B"), "{text}");
    }

    #[test]
    fn hostile_nesting_and_size_fall_back_to_the_flat_conversion() {
        let deep = "<div>".repeat(100_000) + "x" + &"</div>".repeat(100_000);
        assert_eq!(html_to_text(&deep), None);
        assert_eq!(html_to_text(&"<p>a</p>".repeat(100_000)), None, "too large");
        let ordinary = "<div><p>Hi<br>there<img src=x></p></div>".repeat(50);
        assert!(nesting_depth(&ordinary) <= 3);
        assert!(html_to_text(&ordinary).is_some());
    }
}
