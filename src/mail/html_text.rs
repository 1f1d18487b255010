//! The plain text of an HTML-only mail, for reply trimming, search and the
//! text view: `<blockquote>` history becomes `> ` quoted lines, so the trimmer
//! treats it as the quote it is; layout tables read as running text. The HTML
//! itself is kept (sanitized) beside it. No MIME handling lives here.

/// Wide enough that prose is never re-wrapped; quoting still works per line.
const WIDTH: usize = 1_000;

/// Plain text of `html`; `None` when the renderer gives up (the caller then
/// keeps the parser's own conversion).
pub fn html_to_text(html: &str) -> Option<String> {
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
}
