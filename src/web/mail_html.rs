//! A mail's HTML as the ticket page shows it. The stored HTML was sanitized
//! with ammonia at ingest; it is sanitized again here, stricter, because the
//! page must make no request the client did not ask for: no remote images
//! (tracking pixels), no relative URLs, nothing that runs, no styles. An
//! inline `cid:` image becomes its attachment's signed URL; a `data:` image
//! stays; links keep `rel="noopener noreferrer nofollow"`. The page's CSP
//! (`img-src 'self' data:`, no scripts) stands behind this.

use std::borrow::Cow;
use std::collections::HashMap;

/// `html` made safe to embed; `inline_images` maps a Content-ID (without
/// `<>`) to the absolute URL its image is served from.
pub(crate) fn safe_mail_html(html: &str, inline_images: HashMap<String, String>) -> String {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(
            ["http", "https", "mailto", "data", "cid"]
                .into_iter()
                .collect(),
        )
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            let value_lower = value.trim().to_ascii_lowercase();
            match (element, attribute) {
                ("img", "src") => {
                    if let Some(cid) = value.trim().strip_prefix("cid:") {
                        let cid = cid.trim_matches(['<', '>']);
                        return inline_images.get(cid).cloned().map(Cow::Owned);
                    }
                    let raster = [
                        "data:image/png",
                        "data:image/jpeg",
                        "data:image/gif",
                        "data:image/webp",
                    ];
                    raster
                        .iter()
                        .any(|p| value_lower.starts_with(p))
                        .then_some(Cow::Borrowed(value))
                }
                // Only images may be data: or cid: URLs; links are web or mail.
                ("a", "href") => (!value_lower.starts_with("data:")
                    && !value_lower.starts_with("cid:"))
                .then_some(Cow::Borrowed(value)),
                // Any other URL would be fetched without a click.
                (_, "src" | "href" | "cite" | "longdesc" | "srcset" | "background" | "poster") => {
                    None
                }
                _ => Some(Cow::Borrowed(value)),
            }
        });
    let cleaned = builder.clean(html).to_string();
    tidy_images(&cleaned)
}

/// An image whose source was removed goes (it would only show as broken);
/// one without a text alternative gets an empty one, so assistive
/// technology skips it rather than reading its address. Works on ammonia's
/// output, whose attribute values are quoted and escaped.
fn tidy_images(html: &str) -> String {
    static IMG: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"<img\b[^>]*>").expect("valid regex"));
    IMG.replace_all(html, |c: &regex::Captures| {
        let tag = &c[0];
        if !tag.contains(" src=\"") {
            String::new()
        } else if tag.contains(" alt=\"") {
            tag.to_string()
        } else {
            format!("<img alt=\"\"{}", &tag[4..])
        }
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_that_runs_or_fetches_survives() {
        let hostile = r#"<meta http-equiv="refresh" content="0;url=https://evil.test/">
<p onclick="alert(1)">Hi<script>alert(2)</script></p>
<img src="https://tracker.test/pixel.gif" alt="pixel">
<img src=x onerror="alert(3)">
<img src="/l/relative">
<a href="javascript:alert(4)">js</a>
<a href="https://example.test/page">ok</a>
<a href="data:text/html,<script>alert(5)</script>">data</a>
<div style="background:url(https://tracker.test/bg.png)">styled</div>
<svg><image href="https://tracker.test/svg.png"/></svg>
<iframe src="https://evil.test/"></iframe>
<form action="https://evil.test/"><input name="x"></form>"#;
        let out = safe_mail_html(hostile, HashMap::new());
        for banned in [
            "script",
            "onclick",
            "onerror",
            "tracker.test",
            "evil.test",
            "javascript:",
            "data:",
            "style=",
            "<meta",
            "/l/relative",
            "<iframe",
            "<form",
            "<input",
        ] {
            assert!(!out.contains(banned), "{banned} in {out}");
        }
        assert!(out.contains(r#"href="https://example.test/page""#), "{out}");
        assert!(out.contains("noopener"), "{out}");
    }

    #[test]
    fn inline_images_point_at_their_attachment() {
        let mut map = HashMap::new();
        map.insert(
            "logo@x".to_string(),
            "http://help.test/ticket/T-1/files/tok".to_string(),
        );
        let out = safe_mail_html(
            r#"<img src="cid:logo@x" alt="Logo"><img src="cid:other@x" alt="gone"><img src="data:image/png;base64,iVBO" alt="d">"#,
            map,
        );
        assert!(
            out.contains(r#"src="http://help.test/ticket/T-1/files/tok""#),
            "{out}"
        );
        assert!(!out.contains("other@x"), "{out}");
        assert!(out.contains("data:image/png;base64,iVBO"), "{out}");
        assert_eq!(
            out.matches("<img").count(),
            2,
            "the one without a source is gone: {out}"
        );
    }

    #[test]
    fn images_get_a_text_alternative() {
        let out = safe_mail_html(r#"<img src="data:image/gif;base64,R0lG">"#, HashMap::new());
        assert_eq!(out, r#"<img alt="" src="data:image/gif;base64,R0lG">"#);
    }
}
