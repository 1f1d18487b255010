//! Making untrusted mail content safe to store and show: attachment file
//! names and HTML bodies.

use std::sync::LazyLock;

/// A file name safe on every file system and in a `Content-Disposition`
/// header: no path, no control or reserved characters, no leading dots, at
/// most 150 bytes with the extension kept. `fallback_index` names nameless parts.
pub fn sanitize_filename(name: Option<&str>, content_type: &str, fallback_index: usize) -> String {
    let base = name
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
        .unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        return format!(
            "attachment-{fallback_index}.{}",
            extension_for(content_type)
        );
    }
    truncate_keeping_extension(&cleaned, 150)
}

fn truncate_keeping_extension(name: &str, max_bytes: usize) -> String {
    if name.len() <= max_bytes {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.len() <= 10 => (s, Some(e)),
        _ => (name, None),
    };
    let room = max_bytes - ext.map(|e| e.len() + 1).unwrap_or(0);
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    match ext {
        Some(e) => format!("{}.{e}", &stem[..cut]),
        None => stem[..cut].to_string(),
    }
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/heic" => "heic",
        "image/heif" => "heif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "message/rfc822" => "eml",
        _ => "bin",
    }
}

static HTML_CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    // Inline images refer to their attachment by `cid:`; keep those links so
    // the web view can resolve them. Remote images stay (the page's CSP and
    // the viewer decide whether they load); scripts, handlers and styles go.
    b.add_url_schemes(["cid"]);
    b.link_rel(Some("noopener noreferrer nofollow"));
    b
});

/// HTML stripped of everything that can run or track beyond plain markup.
pub fn sanitize_html(html: &str) -> String {
    HTML_CLEANER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_reserved_characters() {
        assert_eq!(
            sanitize_filename(Some("../../etc/passwd"), "text/plain", 1),
            "passwd"
        );
        assert_eq!(
            sanitize_filename(Some("C:\\x\\a<b>.txt"), "text/plain", 1),
            "a_b_.txt"
        );
        assert_eq!(
            sanitize_filename(Some(".bashrc"), "text/plain", 1),
            "bashrc"
        );
        assert_eq!(
            sanitize_filename(None, "image/heic", 3),
            "attachment-3.heic"
        );
        assert_eq!(
            sanitize_filename(Some("Grüße.pdf"), "application/pdf", 1),
            "Grüße.pdf"
        );
        let long = format!("{}.jpeg", "é".repeat(200));
        let s = sanitize_filename(Some(&long), "image/jpeg", 1);
        assert!(s.len() <= 150 && s.ends_with(".jpeg"), "{s}");
    }

    #[test]
    fn html_loses_scripts_keeps_cid_images() {
        let out = sanitize_html(
            r#"<p onclick="x()">Hi<script>alert(1)</script><img src="cid:img1@x"></p>"#,
        );
        assert!(!out.contains("script") && !out.contains("onclick"), "{out}");
        assert!(out.contains("cid:img1@x"), "{out}");
    }
}
