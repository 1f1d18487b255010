//! The daemon's Prometheus metrics (`GET /metrics`, text format): messages
//! ingested by outcome and how long applying them took, mail sent and send
//! failures, job runs by kind and status, each mailbox's connection state,
//! and — read from the database at scrape time — the outbox's depth and
//! the age of its oldest waiting mail. Counters only count here; nothing
//! reads them to decide anything. No label carries an address.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub kind: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabel {
    pub mailbox: String,
}

/// Every metric of one process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub ingested: Family<OutcomeLabel, Counter>,
    /// Seconds from a message being handed to ingest to its commit.
    pub ingest_seconds: Histogram,
    /// Batches that had to be applied again message by message because one
    /// of their messages failed (that one is then quarantined alone).
    pub ingest_batches_redone: Counter,
    pub mail_sent: Counter,
    pub send_failures: Counter,
    pub job_runs: Family<JobLabel, Counter>,
    /// 1 while the mailbox's IMAP session is up, 0 otherwise.
    pub mailbox_connected: Family<MailboxLabel, Gauge>,
    outbox_depth: Gauge,
    outbox_oldest_seconds: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("postdesk");
        let ingested = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "messages_ingested",
            "Inbound messages applied, by outcome",
            ingested.clone(),
        );
        // 1 ms to about 33 s.
        let ingest_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "ingest_latency_seconds",
            "Seconds from a message handed to ingest to its commit",
            ingest_seconds.clone(),
        );
        let ingest_batches_redone = Counter::default();
        registry.register(
            "ingest_batches_redone",
            "Ingest batches applied again message by message after one of their messages failed",
            ingest_batches_redone.clone(),
        );
        let mail_sent = Counter::default();
        registry.register(
            "mail_sent",
            "Mails accepted by the SMTP server",
            mail_sent.clone(),
        );
        let send_failures = Counter::default();
        registry.register(
            "send_failures",
            "Failed SMTP deliveries (each attempt)",
            send_failures.clone(),
        );
        let job_runs = Family::<JobLabel, Counter>::default();
        registry.register(
            "job_runs",
            "Scheduled job runs finished, by kind and status",
            job_runs.clone(),
        );
        let mailbox_connected = Family::<MailboxLabel, Gauge>::default();
        registry.register(
            "mailbox_connected",
            "1 while the mailbox's IMAP session is up",
            mailbox_connected.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Mails waiting in the outbox",
            outbox_depth.clone(),
        );
        let outbox_oldest_seconds = Gauge::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest mail waiting in the outbox (0 when none)",
            outbox_oldest_seconds.clone(),
        );
        Arc::new(Self {
            registry,
            ingested,
            ingest_seconds,
            ingest_batches_redone,
            mail_sent,
            send_failures,
            job_runs,
            mailbox_connected,
            outbox_depth,
            outbox_oldest_seconds,
        })
    }

    pub fn mailbox(&self, name: &str) -> Gauge {
        self.mailbox_connected
            .get_or_create(&MailboxLabel {
                mailbox: name.to_string(),
            })
            .clone()
    }

    /// The text exposition, with the outbox figures read just before.
    pub fn render(&self, outbox_depth: i64, outbox_oldest_seconds: i64) -> String {
        self.outbox_depth.set(outbox_depth);
        self.outbox_oldest_seconds.set(outbox_oldest_seconds);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_what_was_counted() {
        let m = Metrics::new();
        m.ingested
            .get_or_create(&OutcomeLabel {
                outcome: "ticket-created".into(),
            })
            .inc();
        m.ingest_seconds.observe(0.004);
        m.mailbox("support").set(1);
        let text = m.render(3, 42);
        assert!(
            text.contains("postdesk_messages_ingested_total{outcome=\"ticket-created\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("postdesk_ingest_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("postdesk_mailbox_connected{mailbox=\"support\"} 1"),
            "{text}"
        );
        assert!(text.contains("postdesk_outbox_depth 3"), "{text}");
        assert!(
            text.contains("postdesk_outbox_oldest_age_seconds 42"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
