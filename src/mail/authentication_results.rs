//! Reads the DMARC verdict the operator's own MTA wrote into an inbound
//! message (`Authentication-Results`, RFC 8601). Only headers whose
//! authserv-id is the configured, trusted one count: anyone can put an
//! `Authentication-Results` header into a mail, but the trusted MTA strips
//! or overrides those carrying its own id. Pure text work on the header
//! section; no DNS.

/// What the trusted MTA concluded about the From: domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dmarc {
    Pass,
    /// `fail`: the From: address is not the sender's to use.
    Fail,
    /// `none`, `temperror`, `permerror`, …: no verdict either way.
    Other,
}

/// The DMARC result of the trusted MTA's header in `raw`, if it wrote one.
/// With several, a failure wins (a later hop cannot make it pass).
pub fn dmarc_verdict(raw: &[u8], trusted_authserv_id: &str) -> Option<Dmarc> {
    let mut verdict = None;
    for value in header_values(raw, "authentication-results") {
        let mut parts = value.split(';');
        let authserv = parts.next().unwrap_or_default();
        // "mx.example.com" or "mx.example.com 1" (with a version).
        let id = authserv.split_whitespace().next().unwrap_or_default();
        if !id.eq_ignore_ascii_case(trusted_authserv_id) {
            continue;
        }
        for resinfo in parts {
            let Some(result) = resinfo
                .trim()
                .strip_prefix("dmarc=")
                .or_else(|| resinfo.trim().strip_prefix("DMARC="))
            else {
                continue;
            };
            let word: String = result
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            let this = match word.as_str() {
                "pass" => Dmarc::Pass,
                "fail" => Dmarc::Fail,
                _ => Dmarc::Other,
            };
            verdict = match (verdict, this) {
                (Some(Dmarc::Fail), _) | (_, Dmarc::Fail) => Some(Dmarc::Fail),
                (Some(Dmarc::Pass), _) | (_, Dmarc::Pass) => Some(Dmarc::Pass),
                _ => Some(Dmarc::Other),
            };
        }
    }
    verdict
}

/// Every value of header `name` (lower case) in the header section of
/// `raw`, unfolded, in order.
fn header_values(raw: &[u8], name: &str) -> Vec<String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut values = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(v) = current.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some(v) = current.take() {
            values.push(v);
        }
        if let Some((field, value)) = line.split_once(':') {
            if field.trim().eq_ignore_ascii_case(name) {
                current = Some(value.trim().to_string());
            }
        }
    }
    if let Some(v) = current {
        values.push(v);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUSTED: &str = "mx.msp.test";

    fn mail(headers: &str) -> Vec<u8> {
        format!("{headers}From: a@customer.test\r\nSubject: x\r\n\r\nbody\r\nAuthentication-Results: mx.msp.test; dmarc=pass\r\n")
            .into_bytes()
    }

    #[test]
    fn only_the_trusted_mtas_verdict_counts() {
        let failing = mail(
            "Authentication-Results: mx.msp.test;\r\n spf=softfail smtp.mailfrom=x.test;\r\n dmarc=fail (p=reject dis=none) header.from=customer.test\r\n",
        );
        assert_eq!(dmarc_verdict(&failing, TRUSTED), Some(Dmarc::Fail));
        let passing = mail("Authentication-Results: mx.msp.test 1; dkim=pass; dmarc=pass header.from=customer.test\r\n");
        assert_eq!(dmarc_verdict(&passing, TRUSTED), Some(Dmarc::Pass));
        // A header the sender wrote, with another id, is not believed.
        let forged = mail("Authentication-Results: evil.test; dmarc=pass\r\n");
        assert_eq!(dmarc_verdict(&forged, TRUSTED), None);
        // The body's look-alike line is not a header.
        assert_eq!(dmarc_verdict(&mail(""), TRUSTED), None);
        let none = mail("Authentication-Results: MX.MSP.TEST; dmarc=none\r\n");
        assert_eq!(dmarc_verdict(&none, TRUSTED), Some(Dmarc::Other));
    }

    #[test]
    fn a_failure_on_any_trusted_header_wins() {
        let both = mail(
            "Authentication-Results: mx.msp.test; dmarc=pass\r\nAuthentication-Results: mx.msp.test; dmarc=fail\r\n",
        );
        assert_eq!(dmarc_verdict(&both, TRUSTED), Some(Dmarc::Fail));
    }
}
