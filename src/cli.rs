//! The command line: flags parsed once into typed commands, each carried out
//! by the library. `main.rs` only calls [`main`].

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::db::{inbound, outbox, tickets};
use crate::domain::TicketNumber;
use crate::mail::ingest::{Delivery, IngestError, Outcome, Source};
use crate::schedule::{JobKind, PassReport};

/// Exit code asking an MTA to retry later (sysexits.h EX_TEMPFAIL).
pub const EXIT_TEMPFAIL: u8 = 75;

#[derive(Debug, Parser)]
#[command(
    name = "postdesk",
    version,
    about = "Email-driven helpdesk for managed IT service providers"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "POSTDESK_CONFIG",
        default_value = "/etc/postdesk/postdesk.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch mailboxes, send mail.
    Run,
    /// Apply database migrations.
    Migrate,
    /// Check the configuration file and print what is wrong.
    CheckConfig,
    /// Ingest one message from FILE or stdin (MTA pipe mode; exit 75 on a temporary failure).
    Ingest {
        #[arg(default_value = "-")]
        file: String,
    },
    /// Import clients, contacts and invoices from a JSON file.
    Import { file: PathBuf },
    /// Print a signed link for a contact. KIND: invoice, quote, ticket (these
    /// take a NUMBER), statement, payment-methods, tickets, contacts,
    /// preferences.
    Link {
        kind: String,
        number: Option<String>,
        /// The contact's address: the link is theirs.
        #[arg(long)]
        contact: String,
    },
    /// Show what would happen to a message and why, writing nothing.
    Explain {
        file: PathBuf,
        /// Print JSON (the only format).
        #[arg(long)]
        json: bool,
    },
    /// Tickets.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Messages that could not be processed.
    Quarantine {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Mail waiting to be sent, sent and failed.
    Outbox {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Scheduled jobs: their schedules and runs; run one now.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Mail an invoice's payment reminder now; it counts as the dunning
    /// stage that is due, which the scheduler then does not send again.
    Remind { number: String },
    /// The audit log: link opens, form posts, payments, staff commands and
    /// admin API calls, oldest first (the newest `--limit`).
    Audit(AuditArgs),
}

/// `postdesk audit` filters, as typed; [`AuditArgs::filter`] checks them.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// One JSON object per line (JSON Lines) instead of a table.
    #[arg(long)]
    json: bool,
    /// From this instant (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, conflicts_with = "days")]
    since: Option<String>,
    /// The last N days.
    #[arg(long)]
    days: Option<String>,
    /// Before this instant (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// link_open, form_post, payment, staff_command or admin_api.
    #[arg(long)]
    kind: Option<String>,
    /// A client id or name.
    #[arg(long)]
    client: Option<String>,
    /// An actor kind, or kind:id (contact:12, staff:Alice, api_token:admin, stripe).
    #[arg(long)]
    actor: Option<String>,
    /// Actions starting with this (ticket. lists every ticket action).
    #[arg(long)]
    action: Option<String>,
    /// At most this many entries, the newest (default 100; 0: all).
    #[arg(long, default_value = "100")]
    limit: String,
}

impl AuditArgs {
    /// The filter these arguments ask for; an error names the flag.
    pub async fn filter(
        &self,
        conn: &mut crate::db::Conn,
        now: crate::clock::Millis,
    ) -> anyhow::Result<crate::audit::AuditFilter> {
        use crate::audit::{Actor, AuditFilter, AuditKind};
        let time = |flag: &str, text: &str| -> anyhow::Result<i64> {
            chrono::DateTime::parse_from_rfc3339(text.trim())
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--{flag} `{text}` is not an RFC 3339 time like 2026-11-01T00:00:00Z"
                    )
                })
        };
        let mut filter = AuditFilter::default();
        if let Some(text) = &self.since {
            filter.since = Some(time("since", text)?);
        }
        if let Some(text) = &self.days {
            let days: u32 = text
                .trim()
                .parse()
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .ok_or_else(|| {
                    anyhow::anyhow!("--days `{text}` is not a number of days from 1 to 36500")
                })?;
            filter.since = Some(now - i64::from(days) * 86_400_000);
        }
        if let Some(text) = &self.until {
            filter.until = Some(time("until", text)?);
        }
        if let Some(text) = &self.kind {
            let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
            filter.kind = Some(AuditKind::parse(text.trim()).ok_or_else(|| {
                anyhow::anyhow!("--kind `{text}` is not one of {}", names.join(", "))
            })?);
        }
        if let Some(text) = &self.client {
            let text = text.trim();
            let id = match text.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => crate::db::contacts::find_client_by_name(conn, text).await?,
            };
            filter.client_id = Some(id.ok_or_else(|| {
                anyhow::anyhow!("--client `{text}`: no client has that id or name")
            })?);
        }
        if let Some(text) = &self.actor {
            let (kind, id) = match text.trim().split_once(':') {
                Some((k, id)) => (k, Some(id.to_string())),
                None => (text.trim(), None),
            };
            if !Actor::KINDS.contains(&kind) {
                anyhow::bail!(
                    "--actor `{text}`: `{kind}` is not one of {}",
                    Actor::KINDS.join(", ")
                );
            }
            filter.actor = Some((kind.to_string(), id));
        }
        if let Some(text) = &self.action {
            let text = text.trim();
            if text.is_empty()
                || !text
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c))
            {
                anyhow::bail!(
                    "--action `{text}` is not the start of an action like ticket. or invoice.pay"
                );
            }
            filter.action_prefix = Some(text.to_string());
        }
        let limit: i64 = self
            .limit
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| anyhow::anyhow!("--limit `{}` is not a number", self.limit))?;
        filter.limit = (limit > 0).then_some(limit);
        Ok(filter)
    }
}

/// The audit entries as a table for people.
fn audit_text(records: &[crate::audit::AuditRecord]) -> String {
    let mut out = format!(
        "{:<20}  {:<13}  {:<24}  {:<22}  {:<24}  {:<8}  {}\n",
        "at", "kind", "action", "actor", "resource", "outcome", "from"
    );
    for r in records {
        let actor = match &r.actor_id {
            Some(id) => format!("{}:{id}", r.actor_kind),
            None => r.actor_kind.clone(),
        };
        out.push_str(&format!(
            "{:<20}  {:<13}  {:<24}  {:<22}  {:<24}  {:<8}  {}\n",
            r.at,
            r.kind,
            r.action,
            actor,
            r.resource.as_deref().unwrap_or("-"),
            r.outcome,
            r.remote_addr.as_deref().unwrap_or("-"),
        ));
    }
    out
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Each job's cron, next run, and its runs by status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Plan and carry out one job now.
    Run {
        kind: JobKind,
        /// Act as if it were this instant (RFC 3339, e.g. 2026-12-24T09:00:00+01:00).
        #[arg(long)]
        at: Option<String>,
        /// Show what would be sent, to whom and why; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match execute(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            // A pipe-mode delivery must not bounce because of a config typo.
            let code = if matches!(cli.command, Command::Ingest { .. }) {
                EXIT_TEMPFAIL
            } else {
                2
            };
            return Ok(ExitCode::from(code));
        }
    };
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::CheckConfig => {
            println!(
                "{}: OK ({} mailbox(es), {} staff)",
                config.source,
                config.mailboxes.len(),
                config.staff.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            App::open(config, clock).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let app = App::open(config, clock).await?;
            let cancel = CancellationToken::new();
            tokio::spawn(shutdown_on_signal(cancel.clone()));
            app.run(cancel).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { file } => ingest(config, clock, &file).await,
        Command::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let data = crate::import::parse(&text, &name)?;
            let app = App::open(config, clock.clone()).await?;
            let summary = crate::import::import(&app.db, &data, &name, clock.now_millis()).await?;
            print_json(&summary)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Link {
            kind,
            number,
            contact,
        } => {
            let purpose = crate::links::LinkPurpose::parse(&kind)
                .filter(|p| p.is_page_link())
                .with_context(|| {
                    format!(
                        "unknown link kind `{kind}`: one of {}",
                        crate::links::LinkPurpose::ALL
                            .into_iter()
                            .filter(|p| p.is_page_link())
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            let contact = crate::domain::EmailAddress::parse(&contact)
                .with_context(|| format!("--contact `{contact}`"))?;
            let app = App::open(config, clock.clone()).await?;
            let url = crate::links::link_for(
                &app.db,
                &app.config,
                purpose,
                number.as_deref(),
                &contact,
                clock.now_millis() / 1000,
            )
            .await?;
            println!("{url}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { file, json: _ } => {
            let raw =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let app = App::open(config, clock).await?;
            let plan = app.ingestor.explain(&raw, Source::Pipe).await?;
            print_json(&plan)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Tickets { command } => {
            let app = App::open(config, clock).await?;
            let mut conn = app.db.conn().await?;
            match command {
                TicketsCommand::List { json: _ } => {
                    print_json(&tickets::list_tickets(&mut conn).await?)?
                }
                TicketsCommand::Show { number, json: _ } => {
                    let number = TicketNumber::parse(&app.config.tickets.prefix, &number)
                        .map_err(anyhow::Error::msg)?;
                    match tickets::show_ticket(&mut conn, &number).await? {
                        Some(t) => print_json(&t)?,
                        None => {
                            eprintln!("error: no ticket {number}");
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine {
            command: ListCommand::List { json: _ },
        } => {
            let app = App::open(config, clock).await?;
            let mut conn = app.db.conn().await?;
            print_json(&inbound::list_quarantine(&mut conn).await?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox {
            command: ListCommand::List { json: _ },
        } => {
            let app = App::open(config, clock).await?;
            let mut conn = app.db.conn().await?;
            print_json(&outbox::list(&mut conn).await?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { command } => {
            let app = App::open(config, clock.clone()).await?;
            match command {
                JobsCommand::List { json } => {
                    let listing = crate::schedule::listing::list(&app).await?;
                    if json {
                        print_json(&listing)?;
                    } else {
                        print!("{}", listing.to_text());
                    }
                }
                JobsCommand::Run {
                    kind,
                    at,
                    dry_run,
                    json,
                } => {
                    let at = match at {
                        Some(text) => chrono::DateTime::parse_from_rfc3339(text.trim())
                            .with_context(|| {
                                format!("--at `{text}` is not an RFC 3339 time like 2026-12-24T09:00:00+01:00")
                            })?
                            .timestamp_millis(),
                        None => clock.now_millis(),
                    };
                    let worker = crate::schedule::Worker::new();
                    let report = crate::schedule::run_pass(
                        &app,
                        &worker,
                        kind,
                        at,
                        dry_run,
                        &CancellationToken::new(),
                    )
                    .await?;
                    if json {
                        print_json(&report)?;
                    } else {
                        print!("{}", pass_text(&report));
                    }
                    if !dry_run {
                        send_now(&app).await;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => {
            let app = App::open(config, clock.clone()).await?;
            let mut conn = app.db.conn().await?;
            let filter = args.filter(&mut conn, clock.now_millis()).await?;
            let records = crate::db::audit::list(&mut conn, &filter).await?;
            if args.json {
                let mut out = String::new();
                for r in &records {
                    out.push_str(&serde_json::to_string(r)?);
                    out.push('\n');
                }
                print!("{out}");
            } else {
                print!("{}", audit_text(&records));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Remind { number } => {
            let app = App::open(config, clock).await?;
            let report = crate::schedule::dunning::send_now(&app, number.trim()).await?;
            print_json(&report)?;
            send_now(&app).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A pass as lines for people: one per run.
fn pass_text(report: &PassReport) -> String {
    let mut out = String::new();
    let mode = if report.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    out.push_str(&format!(
        "{} at {}{mode}: {} newly planned, {} carried out, {} deferred\n",
        report.kind.map(JobKind::as_str).unwrap_or("job"),
        report.at,
        report.planned,
        report.runs.len(),
        report.deferred
    ));
    for run in &report.runs {
        out.push_str(&format!(
            "  {:<8} {} [{}]: {}\n",
            run.status.as_str(),
            run.about,
            run.stage,
            run.why
        ));
        for mail in &run.mails {
            out.push_str(&format!(
                "           mail {} to {}\n",
                mail.kind,
                mail.to.join(", ")
            ));
        }
    }
    out
}

/// Sends what a one-shot command queued now rather than at the daemon's
/// next round; if this fails the daemon sends it later.
async fn send_now(app: &App) {
    let sent = async {
        let mut state = app.sender.new_state()?;
        let result = app
            .sender
            .round(&mut state, &CancellationToken::new())
            .await;
        state.close().await;
        result
    };
    if let Err(e) = sent.await {
        tracing::warn!(error = %e, "immediate send failed; the daemon will retry");
    }
}

/// MTA pipe mode: one message in, exit 0 when applied (or quarantined), 75
/// when the MTA should retry.
async fn ingest(config: Config, clock: SharedClock, file: &str) -> anyhow::Result<ExitCode> {
    let mut raw = Vec::new();
    let read = if file == "-" {
        std::io::stdin().lock().read_to_end(&mut raw)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut raw))
    };
    if let Err(e) = read {
        eprintln!("error: reading the message: {e}");
        return Ok(ExitCode::from(EXIT_TEMPFAIL));
    }
    let app = match App::open(config, clock).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(EXIT_TEMPFAIL));
        }
    };
    let limit = app.config.limits.max_message_bytes;
    let oversized_bytes = (raw.len() as u64 > limit).then_some(raw.len() as u64);
    if oversized_bytes.is_some() {
        raw.truncate(header_section_len(&raw));
    }
    let delivery = Delivery {
        source: Source::Pipe,
        raw: &raw,
        oversized_bytes,
    };
    match app.ingestor.ingest(delivery).await {
        Ok(outcome) => {
            print_json(&outcome)?;
            if matches!(outcome, Outcome::TicketCreated { .. } | Outcome::Rejected) {
                send_now(&app).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(IngestError::Temporary(e)) => {
            eprintln!("error: temporary failure, try again later: {e}");
            Ok(ExitCode::from(EXIT_TEMPFAIL))
        }
    }
}

/// Length of the header section (up to and including the blank line).
fn header_section_len(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len().min(64 * 1024))
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    cancel.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    cancel.cancel();
}
