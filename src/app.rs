//! Wires the pieces together for `postdesk run` and the one-shot commands:
//! opens the database and stores, builds the ingestor and the outbox sender,
//! and runs the long-lived tasks until the cancellation token fires.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::jobs::outbox_sender::OutboxSender;
use crate::mail::ingest::Ingestor;
use crate::mail::oauth2::{Notices, OAuthGrants};
use crate::mail::smtp::SmtpConnector;
use crate::mail::templates::Templates;
use crate::metrics::Metrics;
use crate::payments::{PaymentProvider, StripeClient};
use crate::storage::BlobStore;

/// Everything a command needs, opened once.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub db: Db,
    pub ingestor: Ingestor,
    pub sender: OutboxSender,
    pub clock: SharedClock,
    /// The payment provider, when `[payments.stripe]` is configured.
    pub payments: Option<Arc<dyn PaymentProvider>>,
    pub metrics: Arc<Metrics>,
    /// This process as a holder of mailbox leases (replicas on PostgreSQL).
    pub replica: Arc<str>,
    /// The OAuth2 grants of the mailboxes and `[smtp]` (empty without any).
    pub oauth: Arc<OAuthGrants>,
}

impl App {
    /// Opens the database (applying pending migrations), storage and templates.
    pub async fn open(config: Config, clock: SharedClock) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let db = Db::connect(&config.database.url, config.database.max_connections)
            .await
            .context("opening the database (database.url)")?;
        db.migrate().await.context("applying database migrations")?;
        let store = BlobStore::open(&config.storage.dir).context("opening storage.dir")?;
        let templates = Arc::new(
            Templates::load(config.templates_dir.as_deref()).context("loading mail templates")?,
        );
        let ready = Arc::new(Notify::new());
        let metrics = Metrics::new();
        let ingestor = Ingestor {
            config: config.clone(),
            db: db.clone(),
            store,
            mailer: crate::mail::outgoing::Mailer {
                config: config.clone(),
                templates,
                dkim: config.dkim.as_ref().map(|d| Arc::new(d.signer())),
            },
            clock: clock.clone(),
            outbox_ready: ready.clone(),
            metrics: metrics.clone(),
        };
        let oauth = OAuthGrants::build(
            &config,
            &db,
            &clock,
            &metrics,
            Notices {
                mailer: ingestor.mailer.clone(),
                operators: config.staff.iter().map(|s| s.email.clone()).collect(),
                outbox_ready: ready.clone(),
            },
        )
        .context("setting up the OAuth2 grants")?;
        oauth
            .load()
            .await
            .context("reading the stored OAuth2 grants")?;
        let oauth = Arc::new(oauth);
        let sender = OutboxSender {
            db: db.clone(),
            clock: clock.clone(),
            connector: SmtpConnector::new(config.smtp.clone()).with_oauth(oauth.for_smtp()),
            ready,
            journal_dir: crate::jobs::send_journal::journal_dir(&config.storage.dir),
            metrics: metrics.clone(),
        };
        let payments = match &config.payments {
            Some(stripe) => Some(Arc::new(
                StripeClient::new(stripe).context("payments.stripe: cannot build the client")?,
            ) as Arc<dyn PaymentProvider>),
            None => None,
        };
        Ok(App {
            config,
            db,
            ingestor,
            sender,
            clock,
            payments,
            metrics,
            replica: crate::mail::mailbox_lease::replica_id().into(),
            oauth,
        })
    }

    /// Runs the mailbox watchers and outbox senders until `cancel`, then waits
    /// for each to reach a safe point.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let _single = crate::run_lock::acquire(&self.config.database.url)?;
        let listener = tokio::net::TcpListener::bind(&self.config.web.listen)
            .await
            .with_context(|| format!("web.listen: cannot listen on {}", self.config.web.listen))?;
        let web_address = listener.local_addr().ok();
        let tasks = tokio_util::task::TaskTracker::new();
        {
            let app = self.clone();
            let cancel = cancel.clone();
            tasks.spawn(async move {
                if let Err(e) = crate::web::serve(app, listener, cancel).await {
                    tracing::error!(error = %e, "web server stopped");
                }
            });
        }
        for mailbox in self.config.mailboxes.iter().cloned() {
            let tokens = self.oauth.for_mailbox(&mailbox.name);
            tasks.spawn(crate::mail::mailbox_lease::watch(
                self.ingestor.clone(),
                mailbox,
                tokens,
                self.replica.clone(),
                self.config.database.mailbox_lease,
                cancel.clone(),
            ));
        }
        for _ in 0..self.config.smtp.connections {
            tasks.spawn(self.sender.clone().run(cancel.clone()));
        }
        tasks.spawn(crate::schedule::run(self.clone(), cancel.clone()));
        tasks.close();
        tracing::info!(
            mailboxes = self.config.mailboxes.len(),
            senders = self.config.smtp.connections,
            web = ?web_address,
            "postdesk running"
        );
        cancel.cancelled().await;
        tracing::info!("shutting down");
        tasks.wait().await;
        Ok(())
    }
}
