//! Ticket vocabulary: numbers, statuses, priorities, contact types.

use std::fmt;

/// Ticket priority; decides the expected first-response time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" | "normal" => Ok(Self::Medium),
            "high" | "urgent" => Ok(Self::High),
            other => Err(format!("`{other}` is not one of low, medium, high")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketStatus {
    Open,
    InProgress,
    WaitingOnClient,
    WaitingOnVendor,
    Closed,
}

impl TicketStatus {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace(['_', ' '], "-").as_str() {
            "open" => Ok(Self::Open),
            "in-progress" => Ok(Self::InProgress),
            "waiting-on-client" => Ok(Self::WaitingOnClient),
            "waiting-on-vendor" => Ok(Self::WaitingOnVendor),
            "closed" => Ok(Self::Closed),
            other => Err(format!(
                "`{other}` is not one of open, in-progress, waiting-on-client, waiting-on-vendor, closed"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in-progress",
            Self::WaitingOnClient => "waiting-on-client",
            Self::WaitingOnVendor => "waiting-on-vendor",
            Self::Closed => "closed",
        }
    }

    /// For people: "Waiting on Client".
    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "Open",
            Self::InProgress => "In Progress",
            Self::WaitingOnClient => "Waiting on Client",
            Self::WaitingOnVendor => "Waiting on Vendor",
            Self::Closed => "Closed",
        }
    }
}

/// A ticket number as people see it: prefix and sequence, e.g. `T-1042`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketNumber(String);

impl TicketNumber {
    pub fn new(prefix: &str, sequence: i64) -> Self {
        Self(format!("{prefix}{sequence}"))
    }

    /// Accepts `T-1042` or `1042` (the prefix is added).
    pub fn parse(prefix: &str, input: &str) -> Result<Self, String> {
        let s = input.trim().trim_start_matches('#');
        let digits = s.strip_prefix(prefix).unwrap_or(s);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "`{input}` is not a ticket number like {prefix}1042"
            ));
        }
        Ok(Self(format!("{prefix}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a contact may receive and see (a contact may hold several types;
/// every contact is at least Standard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContactTypes {
    pub primary: bool,
    pub billing: bool,
    pub technical: bool,
}

impl ContactTypes {
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut t = Self::default();
        for n in names {
            match n.as_ref().trim().to_ascii_lowercase().as_str() {
                "primary" => t.primary = true,
                "billing" => t.billing = true,
                "technical" => t.technical = true,
                "standard" => {}
                other => {
                    return Err(format!(
                        "`{other}` is not one of standard, primary, billing, technical"
                    ))
                }
            }
        }
        Ok(t)
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut v = vec!["standard"];
        if self.primary {
            v.push("primary");
        }
        if self.billing {
            v.push("billing");
        }
        if self.technical {
            v.push("technical");
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_numbers() {
        assert_eq!(
            TicketNumber::parse("T-", "T-1042").unwrap().as_str(),
            "T-1042"
        );
        assert_eq!(
            TicketNumber::parse("T-", "#1042").unwrap().as_str(),
            "T-1042"
        );
        assert!(TicketNumber::parse("T-", "T-10x").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "open",
            "in-progress",
            "waiting-on-client",
            "waiting-on-vendor",
            "closed",
        ] {
            assert_eq!(TicketStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(
            TicketStatus::parse("Waiting on client").unwrap(),
            TicketStatus::WaitingOnClient
        );
    }

    #[test]
    fn contact_types() {
        let t = ContactTypes::parse_list(&["Primary", "billing"]).unwrap();
        assert!(t.primary && t.billing && !t.technical);
        assert!(ContactTypes::parse_list(&["boss"]).is_err());
    }
}
