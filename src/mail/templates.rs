//! Mail templates: handlebars in strict mode, with the defaults of
//! `templates/mail/` built into the binary and every one overridable by a file
//! of the same name in the configured `[templates] dir`.

use std::path::Path;

use handlebars::Handlebars;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("template {name}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: String,
        source: std::io::Error,
    },
    #[error("rendering {name}: {message}")]
    Render { name: String, message: String },
}

/// The three parts of every built-in mail, compiled into the binary.
macro_rules! built_in {
    ($($name:literal),* $(,)?) => {
        &[$(
            (concat!($name, ".subject"), include_str!(concat!("../../templates/mail/", $name, ".subject.hbs"))),
            (concat!($name, ".text"), include_str!(concat!("../../templates/mail/", $name, ".text.hbs"))),
            (concat!($name, ".html"), include_str!(concat!("../../templates/mail/", $name, ".html.hbs"))),
        )*]
    };
}

/// (name, built-in source). A name is `<mail>.<part>` with part subject, text
/// or html.
const BUILT_IN: &[(&str, &str)] = built_in![
    "acknowledgement",
    "unknown_sender_rejected",
    "staff_notification",
    "public_reply",
    "status_changed",
    "command_rejected",
    "fresh_link",
    "quote_decided",
    "quote_confirmation",
    "invoice_issued",
    "invoice_undeliverable",
    "payment_received",
    "payment_failed",
    "quote_sent",
    "invoice_reminder",
    "expiry_alert",
    "card_expiring",
    "sla_alert",
    "waiting_reminder",
    "ticket_auto_closed",
    "hours_used",
    "statement_monthly",
    "service_report",
    "my_links",
    "oauth_revoked",
    "address_confirmation",
    "address_changed",
];

/// Parts added to other mails, overridable like the mails: the footer with
/// the recipient's own links (tickets, statement, preferences), and the
/// branded header (logo, else the company name in the brand colour) and
/// sign-off (company name and `[branding] footer`) every mail includes as
/// the partials `{{> brand_header}}` and `{{> brand_footer}}`.
const FRAGMENTS: &[(&str, &str)] = &[
    (
        "brand_header.html",
        include_str!("../../templates/mail/brand_header.html.hbs"),
    ),
    (
        "brand_footer.html",
        include_str!("../../templates/mail/brand_footer.html.hbs"),
    ),
    (
        "brand_footer.text",
        include_str!("../../templates/mail/brand_footer.text.hbs"),
    ),
    (
        "links_footer.text",
        include_str!("../../templates/mail/links_footer.text.hbs"),
    ),
    (
        "links_footer.html",
        include_str!("../../templates/mail/links_footer.html.hbs"),
    ),
];

/// Two registries because escaping is per registry: HTML parts escape
/// entities, subject and text parts must not.
#[derive(Debug)]
pub struct Templates {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
}

/// A rendered mail: subject line, plain text and HTML.
#[derive(Debug, Clone)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// Loads the built-in templates, replaced by `<dir>/mail/<name>.hbs` (or
    /// `<dir>/<name>.hbs`) where such a file exists.
    pub fn load(override_dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_escape_fn(handlebars::html_escape);
        let mut plain = Handlebars::new();
        plain.set_strict_mode(true);
        plain.register_escape_fn(handlebars::no_escape);
        for (name, built_in) in BUILT_IN.iter().chain(FRAGMENTS) {
            let source = match override_dir.and_then(|d| find_override(d, name)) {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                        name: name.to_string(),
                        path: path.display().to_string(),
                        source,
                    })?
                }
                None => built_in.to_string(),
            };
            let registry = if name.ends_with(".html") {
                &mut html
            } else {
                &mut plain
            };
            let invalid = |e: handlebars::TemplateError| TemplateError::Invalid {
                name: name.to_string(),
                message: e.to_string(),
            };
            if name.starts_with("brand_") {
                // Included by the mails as `{{> brand_header}}`: the part
                // suffix is implied by the registry.
                let stem = name.rsplit_once('.').map_or(*name, |(stem, _)| stem);
                registry
                    .register_partial(stem, source.clone())
                    .map_err(invalid)?;
            }
            registry
                .register_template_string(name, source)
                .map_err(invalid)?;
        }
        Ok(Self { html, plain })
    }

    /// Renders the three parts of mail `name` with `data`.
    pub fn render(
        &self,
        name: &str,
        data: &serde_json::Value,
    ) -> Result<RenderedMail, TemplateError> {
        let part =
            |registry: &Handlebars<'static>, suffix: &str| -> Result<String, TemplateError> {
                let full = format!("{name}.{suffix}");
                registry
                    .render(&full, data)
                    .map_err(|e| TemplateError::Render {
                        name: full,
                        message: e.to_string(),
                    })
            };
        let subject = part(&self.plain, "subject")?;
        Ok(RenderedMail {
            // A subject is one line whatever the template or data hold.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: part(&self.plain, "text")?,
            html: part(&self.html, "html")?,
        })
    }
}

impl Templates {
    /// Appends the footer with `links` to both bodies of `mail`: after the
    /// text, and in the HTML before `</body>` (at the end when there is
    /// none).
    pub fn append_links_footer(
        &self,
        mail: &mut RenderedMail,
        links: &crate::links::issue::ContactLinks,
    ) -> Result<(), TemplateError> {
        let data = serde_json::json!({ "links": links });
        let render = |registry: &Handlebars<'static>, name: &str| {
            registry
                .render(name, &data)
                .map_err(|e| TemplateError::Render {
                    name: name.to_string(),
                    message: e.to_string(),
                })
        };
        let text = render(&self.plain, "links_footer.text")?;
        let html = render(&self.html, "links_footer.html")?;
        if !mail.text.ends_with('\n') {
            mail.text.push('\n');
        }
        mail.text.push_str(&text);
        match mail.html.rfind("</body>") {
            Some(at) => mail.html.insert_str(at, &html),
            None => mail.html.push_str(&html),
        }
        Ok(())
    }
}

fn find_override(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    [
        dir.join("mail").join(format!("{name}.hbs")),
        dir.join(format!("{name}.hbs")),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::issue::ContactLinks;
    use crate::mail::reply_trim::{trim_reply, CutReason};

    #[test]
    fn the_links_footer_opens_with_the_signature_delimiter() {
        // "-- " (with its space, RFC 3676) lets mail clients leave the
        // personal links out of a quoted reply, and our trimming cut them.
        let templates = Templates::load(None).unwrap();
        let mut mail = RenderedMail {
            subject: "Ticket".into(),
            text: "Your ticket is open.".into(),
            html: "<html><body><p>Your ticket is open.</p></body></html>".into(),
        };
        let links = ContactLinks {
            tickets: Some("https://help.example.com/l/secret".into()),
            statement: None,
            contacts: None,
            preferences: None,
        };
        templates.append_links_footer(&mut mail, &links).unwrap();
        assert!(
            mail.text.contains("\n-- \nYour links"),
            "no signature delimiter before the links: {:?}",
            mail.text
        );
        let trimmed = trim_reply(&format!("Thanks, that fixed it.\n\n{}", mail.text));
        assert_eq!(trimmed.cut, Some(CutReason::Signature));
        assert!(!trimmed.text.contains("secret"), "{}", trimmed.text);
    }
}
