//! Configuration: one TOML file, every key overridable from the environment,
//! secrets from the environment or from files — turned once into a typed,
//! validated [`Config`].
//!
//! Environment overrides use `POSTDESK__<SECTION>__<KEY>` (double underscores
//! separate the path; array entries are addressed by index), e.g.
//! `POSTDESK__SMTP__PASSWORD` or `POSTDESK__MAILBOX__0__PASSWORD`.
//! A secret key `password` / `secret` / `secret_key` / `webhook_secrets` may
//! instead be given as `password_file` / `secret_file` / `secret_key_file` /
//! `webhook_secrets_file`: the file's content (without the trailing newline)
//! is used.
//!
//! Every error names the file and the dotted key it is about. Nothing outside
//! this module reads raw configuration text or the process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{BusinessHours, EmailAddress, Priority};
use crate::payments::PaymentMethodKind;

pub mod oauth2;
pub mod schedules;
pub use oauth2::{OAuth2Config, OAuth2Provider};
pub use schedules::{CompanyConfig, CronSchedule, JobSchedule, SchedulesConfig};

/// The environment prefix of overrides.
pub const ENV_PREFIX: &str = "POSTDESK__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: TOML syntax error: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Key {
        file: String,
        key: String,
        message: String,
    },
}

/// Validated configuration of one Postdesk installation.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from (for messages).
    pub source: String,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub mailboxes: Vec<MailboxConfig>,
    pub smtp: SmtpConfig,
    pub tickets: TicketsConfig,
    pub sla: SlaConfig,
    pub web: WebConfig,
    pub link_keys: Vec<LinkKey>,
    /// How long a signed link in a mail opens (`links.ttl_days`).
    pub link_ttl: Duration,
    pub branding: Branding,
    pub staff: Vec<StaffMember>,
    pub templates_dir: Option<PathBuf>,
    pub limits: Limits,
    /// The payment provider (`[payments.stripe]`); `None`: no online payment.
    pub payments: Option<StripeConfig>,
    /// How to pay when no provider is configured (`payments.instructions`),
    /// e.g. bank details; shown on invoice pages.
    pub payment_instructions: Option<String>,
    /// "Invoice issued" mails carry the invoice PDF (`payments.attach_invoice_pdf`).
    pub attach_invoice_pdf: bool,
    /// The company's time zone (`[company]`).
    pub company: CompanyConfig,
    /// When the scheduled jobs run (`[schedules]`).
    pub schedules: SchedulesConfig,
    /// Worked time and invoices (`[hours]`).
    pub hours: HoursConfig,
    /// The authserv-id whose `Authentication-Results` are believed
    /// (`[mail_auth] trusted_authserv_id`); `None`: DMARC is not read.
    pub trusted_authserv_id: Option<String>,
    /// Outgoing mail is DKIM-signed with this (`[dkim]`).
    pub dkim: Option<DkimSettings>,
    /// What the client's own pages show (`[portal]`).
    pub portal: PortalConfig,
    /// How long the audit log keeps its entries (`[audit] retention_days`);
    /// `None`: for good (`retention_days = 0`).
    pub audit_retention_days: Option<u32>,
}

/// The default of `[audit] retention_days`: a little over a year, so last
/// year's disputes can still be looked up.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;

/// What the client's ticket pages show (`[portal]`).
#[derive(Debug, Clone, Default)]
pub struct PortalConfig {
    /// The ticket page shows the time worked on it (`portal.show_time_worked`,
    /// default false: many operators bill time and keep it to themselves).
    pub show_time_worked: bool,
}

/// A DKIM key, checked at load: `domain`, `selector` and the private key.
#[derive(Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub algorithm: lettre::message::dkim::DkimSigningAlgorithm,
    pub private_key: String,
}

impl std::fmt::Debug for DkimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSettings")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("private_key", &"<secret>")
            .finish()
    }
}

impl DkimSettings {
    /// What lettre signs with: relaxed/relaxed, over the headers that say
    /// who, what and which thread.
    pub fn signer(&self) -> lettre::message::dkim::DkimConfig {
        use lettre::message::dkim::{
            DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningKey,
        };
        use lettre::message::header::HeaderName;
        // Checked when the configuration was loaded.
        let key = DkimSigningKey::new(&self.private_key, self.algorithm)
            .expect("a DKIM key checked at load");
        let headers = [
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Reply-To",
            // RFC 8058: the one-click unsubscribe headers must be signed.
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
        DkimConfig::new(
            self.selector.clone(),
            self.domain.clone(),
            key,
            headers,
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        )
    }
}

/// Whether time no prepaid block covers is billed, and at what rate.
#[derive(Debug, Clone, Default)]
pub struct HoursConfig {
    /// Unbilled time becomes a line of the client's next recurring invoice.
    pub bill_unbilled_time: bool,
    /// Per hour, a decimal in the recurring invoice's currency ("95.00").
    pub hourly_rate: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    /// How long a replica's lease on a mailbox lasts without renewal
    /// (`database.mailbox_lease_seconds`): a dead replica's mailboxes are
    /// taken over within this time and a third of it.
    pub mailbox_lease: Duration,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct MailboxConfig {
    pub name: String,
    pub address: EmailAddress,
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_tls: TlsMode,
    pub username: String,
    /// Empty when the mailbox signs in with OAuth2.
    pub password: String,
    /// `auth = "oauth2"`: XOAUTH2 with this grant instead of the password.
    pub oauth2: Option<OAuth2Config>,
    pub folder: String,
    pub processed_folder: Option<String>,
    pub default_priority: Priority,
    pub default_category: Option<String>,
    /// Extra CA certificate (PEM) trusted for this server, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    /// How often to poll when the server has no IDLE.
    pub poll_interval: Duration,
    /// How long one IDLE lasts before it is renewed (RFC 2177: under 29 min).
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From:` of every mail we send (display name allowed).
    pub from: lettre::message::Mailbox,
    pub ca_file: Option<PathBuf>,
    /// Parallel SMTP sessions of the outbox sender.
    pub connections: usize,
    /// `auth = "oauth2"`: XOAUTH2 as `username` with this grant.
    pub oauth2: Option<OAuth2Config>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSenderPolicy {
    Create,
    Quarantine,
    Reject,
}

#[derive(Debug, Clone)]
pub struct TicketsConfig {
    pub prefix: String,
    pub first_number: i64,
    pub unknown_senders: UnknownSenderPolicy,
    pub reopen_days: u32,
}

/// Expected first-response times per priority, in working time
/// (`[company]` business hours).
#[derive(Debug, Clone)]
pub struct SlaConfig {
    pub high: Duration,
    pub medium: Duration,
    /// `None`: by the end of the working day (the default).
    pub low: Option<Duration>,
}

impl SlaConfig {
    /// The working time allowed for a first response; `None`: the rest of
    /// the working day.
    pub fn first_response(&self, priority: Priority) -> Option<Duration> {
        match priority {
            Priority::High => Some(self.high),
            Priority::Medium => Some(self.medium),
            Priority::Low => self.low,
        }
    }

    /// When a first response to a ticket of `priority` opened at `opened`
    /// is due, counted in `hours`.
    pub fn first_response_due(
        &self,
        priority: Priority,
        opened: i64,
        hours: &BusinessHours,
    ) -> i64 {
        let start = chrono::DateTime::from_timestamp_millis(opened).unwrap_or_default();
        let due = match self.first_response(priority) {
            Some(d) => hours.add_working_minutes(start, (d.as_secs() / 60) as i64),
            None => hours.end_of_working_day(start),
        };
        due.timestamp_millis()
    }
}

#[derive(Clone)]
pub struct WebConfig {
    pub listen: String,
    pub base_url: String,
    /// The bearer token of the admin API (`web.admin_token`); without one
    /// the API answers 404.
    pub admin_token: Option<String>,
    /// "Email me my links": mails per address per hour (`web.links_per_address_per_hour`).
    pub links_per_address_per_hour: u32,
    /// "Email me my links": requests per client IP per hour (`web.links_per_ip_per_hour`).
    pub links_per_ip_per_hour: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`web.trusted_proxies`); none by default.
    pub trusted_proxies: crate::domain::TrustedProxies,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("base_url", &self.base_url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "links_per_address_per_hour",
                &self.links_per_address_per_hour,
            )
            .field("links_per_ip_per_hour", &self.links_per_ip_per_hour)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

#[derive(Clone)]
pub struct LinkKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    // Never print secrets, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Branding {
    pub company_name: String,
    pub logo_url: Option<String>,
    pub primary_color: String,
    pub footer: Option<String>,
    pub subject_prefix: Option<String>,
}

/// Stripe (`[payments.stripe]`).
#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a fake server's address in tests (plain
    /// `http://` only for localhost). No trailing slash.
    pub api_base: String,
    /// `sk_…` or a restricted `rk_…` key.
    pub secret_key: String,
    /// Signing secrets of the webhook endpoint (`whsec_…`); any of them
    /// verifies, so a rotation lists the old and the new one.
    pub webhook_secrets: Vec<String>,
    /// What payers may use, in the order offered; bank debits only where
    /// the currency fits (SEPA: EUR, US bank account: USD).
    pub payment_method_types: Vec<PaymentMethodKind>,
}

impl std::fmt::Debug for StripeConfig {
    // Never print secrets, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("payment_method_types", &self.payment_method_types)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct StaffMember {
    pub email: EmailAddress,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message downloaded whole; larger ones are recorded, not fetched.
    pub max_message_bytes: u64,
    /// Automatic mails one address may get about one ticket per window.
    pub auto_mail_per_ticket: u32,
    /// Automatic mails one address may get in all per window.
    pub auto_mail_per_address: u32,
    pub auto_mail_window: Duration,
    /// Replies one contact may post from ticket pages per hour.
    pub portal_replies_per_hour: u32,
}

// ---------------------------------------------------------------- raw shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: RawDatabase,
    storage: RawStorage,
    #[serde(default)]
    mailbox: Vec<RawMailbox>,
    smtp: RawSmtp,
    #[serde(default)]
    tickets: RawTickets,
    #[serde(default)]
    sla: RawSla,
    web: RawWeb,
    links: RawLinks,
    #[serde(default)]
    branding: RawBranding,
    #[serde(default)]
    staff: Vec<RawStaff>,
    #[serde(default)]
    templates: RawTemplates,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    payments: RawPayments,
    #[serde(default)]
    company: schedules::RawCompany,
    #[serde(default)]
    schedules: schedules::RawSchedules,
    #[serde(default)]
    hours: RawHours,
    #[serde(default)]
    mail_auth: RawMailAuth,
    dkim: Option<RawDkim>,
    #[serde(default)]
    portal: RawPortal,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default = "default_audit_retention_days")]
    retention_days: u32,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

fn default_audit_retention_days() -> u32 {
    DEFAULT_AUDIT_RETENTION_DAYS
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    #[serde(default)]
    show_time_worked: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: String,
    selector: String,
    /// RSA: the PKCS#1 PEM; Ed25519: the base64 of the 32-byte secret.
    private_key: String,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: String,
}
fn default_dkim_algorithm() -> String {
    "rsa".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMailAuth {
    /// The authserv-id of the operator's own MTA in `Authentication-Results`.
    trusted_authserv_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHours {
    #[serde(default)]
    bill_unbilled_time: bool,
    #[serde(default)]
    hourly_rate: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    #[serde(default = "default_max_connections")]
    max_connections: u32,
    #[serde(default = "default_mailbox_lease_seconds")]
    mailbox_lease_seconds: u64,
}
fn default_mailbox_lease_seconds() -> u64 {
    30
}
fn default_max_connections() -> u32 {
    8
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: String,
    address: String,
    /// Optional with an OAuth2 provider preset.
    imap_host: Option<String>,
    imap_port: Option<u16>,
    #[serde(default = "default_tls")]
    imap_tls: String,
    username: String,
    /// `password` (default) or `oauth2`.
    auth: Option<String>,
    password: Option<String>,
    oauth2: Option<oauth2::RawOAuth2>,
    #[serde(default = "default_folder")]
    folder: String,
    processed_folder: Option<String>,
    #[serde(default = "default_priority")]
    default_priority: String,
    default_category: Option<String>,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_poll_seconds")]
    poll_interval_seconds: u64,
    #[serde(default = "default_idle_minutes")]
    idle_timeout_minutes: u64,
}
fn default_tls() -> String {
    "tls".into()
}
fn default_folder() -> String {
    "INBOX".into()
}
fn default_priority() -> String {
    "medium".into()
}
fn default_poll_seconds() -> u64 {
    30
}
fn default_idle_minutes() -> u64 {
    20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    /// Optional with an OAuth2 provider preset.
    host: Option<String>,
    port: Option<u16>,
    #[serde(default = "default_smtp_tls")]
    tls: String,
    username: Option<String>,
    /// `password` (default: username + password, or no AUTH) or `oauth2`.
    auth: Option<String>,
    password: Option<String>,
    oauth2: Option<oauth2::RawOAuth2>,
    from: String,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_smtp_connections")]
    connections: usize,
}
fn default_smtp_tls() -> String {
    "starttls".into()
}
fn default_smtp_connections() -> usize {
    2
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default = "default_first_number")]
    first_number: i64,
    #[serde(default = "default_unknown_senders")]
    unknown_senders: String,
    #[serde(default = "default_reopen_days")]
    reopen_days: u32,
}
impl Default for RawTickets {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            first_number: default_first_number(),
            unknown_senders: default_unknown_senders(),
            reopen_days: default_reopen_days(),
        }
    }
}
fn default_prefix() -> String {
    "T-".into()
}
fn default_first_number() -> i64 {
    1001
}
fn default_unknown_senders() -> String {
    "create".into()
}
fn default_reopen_days() -> u32 {
    14
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    #[serde(default = "default_sla_high")]
    high_minutes: u64,
    #[serde(default = "default_sla_medium")]
    medium_minutes: u64,
    /// Absent: by the end of the working day.
    #[serde(default)]
    low_minutes: Option<u64>,
}
impl Default for RawSla {
    fn default() -> Self {
        Self {
            high_minutes: default_sla_high(),
            medium_minutes: default_sla_medium(),
            low_minutes: None,
        }
    }
}
fn default_sla_high() -> u64 {
    30
}
fn default_sla_medium() -> u64 {
    120
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: String,
    base_url: String,
    admin_token: Option<String>,
    #[serde(default = "default_links_per_address_per_hour")]
    links_per_address_per_hour: u32,
    #[serde(default = "default_links_per_ip_per_hour")]
    links_per_ip_per_hour: u32,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

fn default_links_per_address_per_hour() -> u32 {
    3
}

fn default_links_per_ip_per_hour() -> u32 {
    20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    keys: Vec<RawLinkKey>,
    #[serde(default = "default_link_ttl_days")]
    ttl_days: u32,
}

fn default_link_ttl_days() -> u32 {
    45
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinkKey {
    id: String,
    secret: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBranding {
    #[serde(default = "default_company")]
    company_name: String,
    logo_url: Option<String>,
    #[serde(default = "default_color")]
    primary_color: String,
    footer: Option<String>,
    subject_prefix: Option<String>,
}
impl Default for RawBranding {
    fn default() -> Self {
        Self {
            company_name: default_company(),
            logo_url: None,
            primary_color: default_color(),
            footer: None,
            subject_prefix: None,
        }
    }
}
fn default_company() -> String {
    "Support".into()
}
fn default_color() -> String {
    "#1f5fbf".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    email: String,
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_message_mb")]
    max_message_mb: u64,
    #[serde(default = "default_auto_mail_per_ticket")]
    auto_mail_per_ticket: u32,
    #[serde(default = "default_auto_mail_per_address")]
    auto_mail_per_address: u32,
    #[serde(default = "default_auto_mail_window_minutes")]
    auto_mail_window_minutes: u64,
    #[serde(default = "default_portal_replies_per_hour")]
    portal_replies_per_hour: u32,
}
impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_message_mb: default_max_message_mb(),
            auto_mail_per_ticket: default_auto_mail_per_ticket(),
            auto_mail_per_address: default_auto_mail_per_address(),
            auto_mail_window_minutes: default_auto_mail_window_minutes(),
            portal_replies_per_hour: default_portal_replies_per_hour(),
        }
    }
}
fn default_auto_mail_per_ticket() -> u32 {
    10
}
fn default_auto_mail_per_address() -> u32 {
    30
}
fn default_auto_mail_window_minutes() -> u64 {
    10
}
fn default_portal_replies_per_hour() -> u32 {
    20
}
fn default_max_message_mb() -> u64 {
    25
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPayments {
    instructions: Option<String>,
    /// Attach the invoice as a PDF to "invoice issued" mails.
    #[serde(default)]
    attach_invoice_pdf: bool,
    stripe: Option<RawStripe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStripe {
    #[serde(default = "default_stripe_api_base")]
    api_base: String,
    secret_key: String,
    webhook_secrets: RawSecretList,
    #[serde(default = "default_payment_method_types")]
    payment_method_types: Vec<String>,
}
fn default_stripe_api_base() -> String {
    "https://api.stripe.com".into()
}
fn default_payment_method_types() -> Vec<String> {
    vec!["card".into(), "us_bank_account".into(), "sepa_debit".into()]
}

/// A list of secrets: a TOML array, or one string (from the environment or a
/// `_file`) with the secrets separated by commas, spaces or newlines.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecretList {
    List(Vec<String>),
    Text(String),
}

impl RawSecretList {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::List(list) => list.into_iter().map(|s| s.trim().to_string()).collect(),
            Self::Text(text) => text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

// ---------------------------------------------------------------- loading

impl Config {
    /// Reads `path`, applies the process environment's overrides and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let env: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::from_toml_with_env(&text, &file, &env)
    }

    /// Parses `text` (named `file` in errors) with the given overrides.
    pub fn from_toml_with_env(
        text: &str,
        file: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.message().to_string(),
        })?;
        for (name, raw) in env {
            apply_env_override(&mut value, name, raw).map_err(|message| ConfigError::Key {
                file: format!("environment variable {name}"),
                key: env_key_path(name),
                message,
            })?;
        }
        resolve_secret_files(&mut value, "", file)?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(value).map_err(|e| ConfigError::Key {
                file: file.to_string(),
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        validate(raw, file)
    }
}

fn env_key_path(name: &str) -> String {
    name.trim_start_matches(ENV_PREFIX)
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

/// Sets the value at the path of `POSTDESK__A__B__C` to `raw`, keeping the type
/// of an existing value (numbers and booleans stay numbers and booleans).
fn apply_env_override(root: &mut toml::Value, name: &str, raw: &str) -> Result<(), String> {
    let parts: Vec<String> = name
        .trim_start_matches(ENV_PREFIX)
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err("empty key".into());
    };
    let mut node = root;
    for part in parents {
        node = match node {
            toml::Value::Table(t) => t
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            toml::Value::Array(a) => {
                let i: usize = part
                    .parse()
                    .map_err(|_| format!("`{part}` is not an array index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("no array entry {i} in the file to override"))?
            }
            _ => return Err(format!("`{part}` is not a table")),
        };
    }
    let toml::Value::Table(table) = node else {
        return Err("the parent of this key is not a table".into());
    };
    let new_value = match table.get(last) {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("`{raw}` is not an integer"))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            raw.parse()
                .map_err(|_| format!("`{raw}` is not true or false"))?,
        ),
        _ => match raw.parse::<i64>() {
            // A key absent from the file: guess from the text (ports are numbers).
            Ok(n) if last.ends_with("port") || last.ends_with("connections") => {
                toml::Value::Integer(n)
            }
            _ => toml::Value::String(raw.to_string()),
        },
    };
    table.insert(last.clone(), new_value);
    Ok(())
}

/// Replaces every `<key>_file = "path"` of a secret key by `<key> = <content>`.
fn resolve_secret_files(
    value: &mut toml::Value,
    path: &str,
    file: &str,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::Table(table) => {
            let file_keys: Vec<String> = table
                .keys()
                .filter(|k| {
                    matches!(
                        k.as_str(),
                        "password_file"
                            | "secret_file"
                            | "admin_token_file"
                            | "secret_key_file"
                            | "webhook_secrets_file"
                            | "private_key_file"
                            | "client_secret_file"
                    )
                })
                .cloned()
                .collect();
            for key in file_keys {
                let dotted = join_key(path, &key);
                let Some(toml::Value::String(secret_path)) = table.remove(&key) else {
                    return Err(ConfigError::Key {
                        file: file.into(),
                        key: dotted,
                        message: "must be a file path".into(),
                    });
                };
                let content =
                    std::fs::read_to_string(&secret_path).map_err(|e| ConfigError::Key {
                        file: file.into(),
                        key: dotted.clone(),
                        message: format!("cannot read secret file: {e}"),
                    })?;
                let target = key.trim_end_matches("_file").to_string();
                table.insert(
                    target,
                    toml::Value::String(content.trim_end_matches(['\r', '\n']).to_string()),
                );
            }
            for (k, v) in table.iter_mut() {
                resolve_secret_files(v, &join_key(path, k), file)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                resolve_secret_files(v, &format!("{path}[{i}]"), file)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn validate(raw: RawConfig, file: &str) -> Result<Config, ConfigError> {
    let err = |key: &str, message: String| ConfigError::Key {
        file: file.to_string(),
        key: key.to_string(),
        message,
    };

    let url = raw.database.url.trim().to_string();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(err(
            "database.url",
            "must start with sqlite:, postgres:// or postgresql://".into(),
        ));
    }
    if raw.storage.dir.as_os_str().is_empty() {
        return Err(err("storage.dir", "must not be empty".into()));
    }

    let mut mailboxes = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, m) in raw.mailbox.into_iter().enumerate() {
        let key = |k: &str| format!("mailbox[{i}].{k}");
        if m.name.trim().is_empty() {
            return Err(err(&key("name"), "must not be empty".into()));
        }
        if !names.insert(m.name.clone()) {
            return Err(err(&key("name"), format!("`{}` is used twice", m.name)));
        }
        let address =
            EmailAddress::parse(&m.address).map_err(|e| err(&key("address"), e.to_string()))?;
        let imap_tls = parse_tls(&m.imap_tls).map_err(|e| err(&key("imap_tls"), e))?;
        let default_priority =
            Priority::parse(&m.default_priority).map_err(|e| err(&key("default_priority"), e))?;
        let oauth2 = match parse_auth(m.auth.as_deref(), m.oauth2.is_some())
            .map_err(|e| err(&key("auth"), e))?
        {
            Auth::Password => {
                if m.oauth2.is_some() {
                    return Err(err(
                        &key("oauth2"),
                        "set auth = \"oauth2\" to use it, or remove it".into(),
                    ));
                }
                if m.password.is_none() {
                    return Err(err(
                        &key("password"),
                        "missing (or set auth = \"oauth2\" with a [mailbox.oauth2] section)".into(),
                    ));
                }
                None
            }
            Auth::OAuth2 => {
                let Some(raw) = m.oauth2 else {
                    return Err(err(
                        &key("oauth2"),
                        "missing: auth = \"oauth2\" needs a [mailbox.oauth2] section".into(),
                    ));
                };
                Some(oauth2::validate(raw, &key("oauth2"), &err)?)
            }
        };
        let preset = oauth2.as_ref().and_then(|o| o.provider.imap_server());
        let imap_host = match (m.imap_host, preset) {
            (Some(host), _) => host,
            (None, Some((host, _))) => host.to_string(),
            (None, None) => {
                return Err(err(
                    &key("imap_host"),
                    "missing (only oauth2 providers microsoft and google fill it in)".into(),
                ))
            }
        };
        let imap_port = m
            .imap_port
            .or(preset.map(|(_, port)| port))
            .unwrap_or(match imap_tls {
                TlsMode::Tls => 993,
                _ => 143,
            });
        if m.idle_timeout_minutes == 0 || m.idle_timeout_minutes > 29 {
            return Err(err(
                &key("idle_timeout_minutes"),
                "must be between 1 and 29 (RFC 2177)".into(),
            ));
        }
        if m.poll_interval_seconds == 0 {
            return Err(err(
                &key("poll_interval_seconds"),
                "must be at least 1".into(),
            ));
        }
        mailboxes.push(MailboxConfig {
            name: m.name,
            address,
            imap_host,
            imap_port,
            imap_tls,
            username: m.username,
            password: if oauth2.is_some() {
                String::new()
            } else {
                m.password.unwrap_or_default()
            },
            oauth2,
            folder: m.folder,
            processed_folder: m.processed_folder.filter(|f| !f.trim().is_empty()),
            default_priority,
            default_category: m.default_category.filter(|c| !c.trim().is_empty()),
            ca_file: m.ca_file,
            poll_interval: Duration::from_secs(m.poll_interval_seconds),
            idle_timeout: Duration::from_secs(m.idle_timeout_minutes * 60),
        });
    }

    let smtp_tls = parse_tls(&raw.smtp.tls).map_err(|e| err("smtp.tls", e))?;
    let from: lettre::message::Mailbox = raw
        .smtp
        .from
        .parse()
        .map_err(|e| err("smtp.from", format!("not a mail address: {e}")))?;
    let smtp_oauth2 = match parse_auth(raw.smtp.auth.as_deref(), raw.smtp.oauth2.is_some())
        .map_err(|e| err("smtp.auth", e))?
    {
        Auth::Password => {
            if raw.smtp.oauth2.is_some() {
                return Err(err(
                    "smtp.oauth2",
                    "set auth = \"oauth2\" to use it, or remove it".into(),
                ));
            }
            if raw.smtp.username.is_some() != raw.smtp.password.is_some() {
                return Err(err(
                    "smtp.password",
                    "username and password go together: set both or neither".into(),
                ));
            }
            None
        }
        Auth::OAuth2 => {
            let Some(o) = raw.smtp.oauth2 else {
                return Err(err(
                    "smtp.oauth2",
                    "missing: auth = \"oauth2\" needs an [smtp.oauth2] section".into(),
                ));
            };
            if raw.smtp.username.is_none() {
                return Err(err(
                    "smtp.username",
                    "missing: XOAUTH2 signs in as this account".into(),
                ));
            }
            if raw.smtp.password.is_some() {
                return Err(err(
                    "smtp.password",
                    "not used with auth = \"oauth2\": remove it".into(),
                ));
            }
            Some(oauth2::validate(o, "smtp.oauth2", &err)?)
        }
    };
    let smtp_preset = smtp_oauth2.as_ref().and_then(|o| o.provider.smtp_server());
    let smtp_host = match (raw.smtp.host, smtp_preset) {
        (Some(host), _) => host,
        (None, Some((host, _))) => host.to_string(),
        (None, None) => {
            return Err(err(
                "smtp.host",
                "missing (only oauth2 providers microsoft and google fill it in)".into(),
            ))
        }
    };
    if raw.smtp.connections == 0 || raw.smtp.connections > 32 {
        return Err(err("smtp.connections", "must be between 1 and 32".into()));
    }
    let smtp = SmtpConfig {
        port: raw
            .smtp
            .port
            .or(smtp_preset.map(|(_, port)| port))
            .unwrap_or(match smtp_tls {
                TlsMode::Tls => 465,
                TlsMode::StartTls => 587,
                TlsMode::None => 25,
            }),
        host: smtp_host,
        tls: smtp_tls,
        username: raw.smtp.username,
        password: raw.smtp.password,
        from,
        ca_file: raw.smtp.ca_file,
        connections: raw.smtp.connections,
        oauth2: smtp_oauth2,
    };

    let unknown_senders = match raw.tickets.unknown_senders.as_str() {
        "create" => UnknownSenderPolicy::Create,
        "quarantine" => UnknownSenderPolicy::Quarantine,
        "reject" => UnknownSenderPolicy::Reject,
        other => {
            return Err(err(
                "tickets.unknown_senders",
                format!("`{other}` is not one of create, quarantine, reject"),
            ))
        }
    };
    let prefix = raw.tickets.prefix;
    if prefix.len() > 16
        || prefix
            .chars()
            .any(|c| c.is_whitespace() || c == ']' || c == '[')
    {
        return Err(err(
            "tickets.prefix",
            "at most 16 characters, no spaces or brackets".into(),
        ));
    }
    if raw.tickets.first_number < 1 {
        return Err(err("tickets.first_number", "must be at least 1".into()));
    }

    if raw.links.keys.is_empty() {
        return Err(err(
            "links.keys",
            "at least one key is needed to sign links".into(),
        ));
    }
    let mut link_keys = Vec::new();
    for (i, k) in raw.links.keys.into_iter().enumerate() {
        if k.id.is_empty()
            || !k
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err(
                &format!("links.keys[{i}].id"),
                "letters, digits, - and _ only".into(),
            ));
        }
        if k.secret.len() < 32 {
            return Err(err(
                &format!("links.keys[{i}].secret"),
                "must be at least 32 characters".into(),
            ));
        }
        link_keys.push(LinkKey {
            id: k.id,
            secret: k.secret.into_bytes(),
        });
    }

    if !(1..=400).contains(&raw.links.ttl_days) {
        return Err(err("links.ttl_days", "must be 1 to 400 days".into()));
    }
    let link_ttl = Duration::from_secs(u64::from(raw.links.ttl_days) * 86_400);

    let base_url = raw.web.base_url.trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(err(
            "web.base_url",
            "must start with http:// or https://".into(),
        ));
    }
    let admin_token = match raw.web.admin_token.map(|t| t.trim().to_string()) {
        Some(t) if t.len() < 32 => {
            return Err(err(
                "web.admin_token",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)".into(),
            ))
        }
        other => other,
    };
    let trusted_proxies = crate::domain::TrustedProxies::parse(&raw.web.trusted_proxies)
        .map_err(|e| err("web.trusted_proxies", e.to_string()))?;

    let mut staff = Vec::new();
    for (i, s) in raw.staff.into_iter().enumerate() {
        let email = EmailAddress::parse(&s.email)
            .map_err(|e| err(&format!("staff[{i}].email"), e.to_string()))?;
        staff.push(StaffMember {
            email,
            name: s.name,
        });
    }

    let color = raw.branding.primary_color;
    let valid_color = color.len() == 7
        && color.starts_with('#')
        && color[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !valid_color {
        return Err(err(
            "branding.primary_color",
            "must be a #rrggbb colour".into(),
        ));
    }

    // The logo is shown by pages and mails and named in the ticket page's
    // CSP, so it must be one plain https (or http) URL.
    if let Some(logo) = &raw.branding.logo_url {
        let plain = (logo.starts_with("https://") || logo.starts_with("http://"))
            && logo.len() > "https://".len()
            && !logo.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, ';' | ',' | '"' | '\'' | '<' | '>')
            });
        if !plain {
            return Err(err(
                "branding.logo_url",
                "must be an https:// URL without spaces, quotes, `;` or `,`".into(),
            ));
        }
    }

    if raw.limits.max_message_mb == 0 {
        return Err(err("limits.max_message_mb", "must be at least 1".into()));
    }
    if raw.limits.auto_mail_window_minutes == 0 {
        return Err(err(
            "limits.auto_mail_window_minutes",
            "must be at least 1".into(),
        ));
    }
    if raw.limits.portal_replies_per_hour == 0 {
        return Err(err(
            "limits.portal_replies_per_hour",
            "must be at least 1".into(),
        ));
    }

    let company = schedules::validate_company(raw.company, &err)?;
    let hourly_rate = raw.hours.hourly_rate.map(|r| r.trim().to_string());
    if let Some(rate) = &hourly_rate {
        let decimal = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let ok = match rate.split_once('.') {
            Some((whole, frac)) => decimal(whole) && decimal(frac) && frac.len() <= 3,
            None => decimal(rate),
        };
        if !ok {
            return Err(err(
                "hours.hourly_rate",
                format!("`{rate}` is not an amount like 95.00"),
            ));
        }
    }
    if raw.hours.bill_unbilled_time && hourly_rate.is_none() {
        return Err(err(
            "hours.hourly_rate",
            "is needed when bill_unbilled_time is on".into(),
        ));
    }
    let trusted_authserv_id = match raw
        .mail_auth
        .trusted_authserv_id
        .map(|s| s.trim().to_string())
    {
        Some(id) if id.is_empty() || id.contains([';', ' ']) => {
            return Err(err(
                "mail_auth.trusted_authserv_id",
                format!("`{id}` is not an authserv-id (the MTA's host name, e.g. mx.example.com)"),
            ))
        }
        other => other,
    };
    let dkim = match raw.dkim {
        None => None,
        Some(d) => {
            use lettre::message::dkim::{DkimSigningAlgorithm, DkimSigningKey};
            let algorithm = match d.algorithm.trim() {
                "rsa" => DkimSigningAlgorithm::Rsa,
                "ed25519" => DkimSigningAlgorithm::Ed25519,
                other => {
                    return Err(err(
                        "dkim.algorithm",
                        format!("`{other}` is not one of rsa, ed25519"),
                    ))
                }
            };
            let private_key = d.private_key.trim().to_string();
            if let Err(e) = DkimSigningKey::new(&private_key, algorithm) {
                return Err(err(
                    "dkim.private_key",
                    format!(
                        "not a usable {} key ({e}); RSA wants a PKCS#1 PEM \
                         (openssl genrsa -traditional)",
                        d.algorithm.trim()
                    ),
                ));
            }
            let domain = d.domain.trim().to_ascii_lowercase();
            if EmailAddress::parse(&format!("x@{domain}")).is_err() {
                return Err(err("dkim.domain", format!("`{domain}` is not a domain")));
            }
            let selector = d.selector.trim().to_string();
            if selector.is_empty()
                || !selector
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            {
                return Err(err(
                    "dkim.selector",
                    "must be letters, digits, '-' or '.'".into(),
                ));
            }
            Some(DkimSettings {
                domain,
                selector,
                algorithm,
                private_key,
            })
        }
    };
    let hours = HoursConfig {
        bill_unbilled_time: raw.hours.bill_unbilled_time,
        hourly_rate,
    };
    let schedules = schedules::validate_schedules(raw.schedules, &err)?;
    let attach_invoice_pdf = raw.payments.attach_invoice_pdf;
    let payment_instructions = raw
        .payments
        .instructions
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let payments = raw
        .payments
        .stripe
        .map(|stripe| validate_stripe(stripe, &err))
        .transpose()?;

    // 0 keeps the log for good; otherwise at least 30 days (a shorter log
    // loses what a dispute of last month's payment needs) and at most 100
    // years.
    let audit_retention_days = match raw.audit.retention_days {
        0 => None,
        d @ 30..=36_500 => Some(d),
        d => {
            return Err(err(
                "audit.retention_days",
                format!("{d} is out of range: 0 (keep for good) or 30 to 36500 days"),
            ))
        }
    };
    Ok(Config {
        source: file.to_string(),
        database: DatabaseConfig {
            url,
            max_connections: raw.database.max_connections.max(1),
            mailbox_lease: match raw.database.mailbox_lease_seconds {
                s @ 3..=600 => Duration::from_secs(s),
                _ => {
                    return Err(err(
                        "database.mailbox_lease_seconds",
                        "must be between 3 and 600".into(),
                    ))
                }
            },
        },
        storage: StorageConfig {
            dir: raw.storage.dir,
        },
        mailboxes,
        smtp,
        tickets: TicketsConfig {
            prefix,
            first_number: raw.tickets.first_number,
            unknown_senders,
            reopen_days: raw.tickets.reopen_days,
        },
        sla: SlaConfig {
            high: Duration::from_secs(raw.sla.high_minutes * 60),
            medium: Duration::from_secs(raw.sla.medium_minutes * 60),
            low: raw.sla.low_minutes.map(|m| Duration::from_secs(m * 60)),
        },
        web: WebConfig {
            listen: raw.web.listen,
            base_url,
            admin_token,
            links_per_address_per_hour: raw.web.links_per_address_per_hour,
            links_per_ip_per_hour: raw.web.links_per_ip_per_hour,
            trusted_proxies,
        },
        link_keys,
        link_ttl,
        branding: Branding {
            company_name: raw.branding.company_name,
            logo_url: raw.branding.logo_url,
            primary_color: color,
            footer: raw.branding.footer,
            subject_prefix: raw.branding.subject_prefix,
        },
        staff,
        templates_dir: raw.templates.dir,
        limits: Limits {
            max_message_bytes: raw.limits.max_message_mb * 1024 * 1024,
            auto_mail_per_ticket: raw.limits.auto_mail_per_ticket,
            auto_mail_per_address: raw.limits.auto_mail_per_address,
            auto_mail_window: Duration::from_secs(raw.limits.auto_mail_window_minutes * 60),
            portal_replies_per_hour: raw.limits.portal_replies_per_hour,
        },
        payments,
        payment_instructions,
        attach_invoice_pdf,
        company,
        schedules,
        hours,
        trusted_authserv_id,
        dkim,
        portal: PortalConfig {
            show_time_worked: raw.portal.show_time_worked,
        },
        audit_retention_days,
    })
}

fn validate_stripe(
    raw: RawStripe,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<StripeConfig, ConfigError> {
    let api_base = raw.api_base.trim().trim_end_matches('/').to_string();
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| {
            api_base
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if !((api_base.starts_with("https://") && api_base.len() > "https://".len()) || local) {
        return Err(err(
            "payments.stripe.api_base",
            "must be an https:// address (plain http:// only for localhost)".into(),
        ));
    }

    let secret_key = raw.secret_key.trim().to_string();
    if secret_key.starts_with("pk_") {
        return Err(err(
            "payments.stripe.secret_key",
            "this is the publishable key (pk_…); the secret key starts with sk_ or rk_".into(),
        ));
    }
    let well_formed = |s: &str| s.len() > 8 && s.bytes().all(|b| b.is_ascii_graphic());
    if !((secret_key.starts_with("sk_") || secret_key.starts_with("rk_"))
        && well_formed(&secret_key))
    {
        return Err(err(
            "payments.stripe.secret_key",
            "must be a Stripe secret key (sk_…) or restricted key (rk_…)".into(),
        ));
    }

    let webhook_secrets = raw.webhook_secrets.into_vec();
    if webhook_secrets.is_empty() {
        return Err(err(
            "payments.stripe.webhook_secrets",
            "at least one webhook signing secret (whsec_…) is needed to accept payments".into(),
        ));
    }
    for (i, secret) in webhook_secrets.iter().enumerate() {
        if !(secret.starts_with("whsec_") && well_formed(secret)) {
            return Err(err(
                &format!("payments.stripe.webhook_secrets[{i}]"),
                "must be a webhook signing secret (whsec_…)".into(),
            ));
        }
    }

    let mut payment_method_types = Vec::new();
    for (i, name) in raw.payment_method_types.iter().enumerate() {
        let kind = PaymentMethodKind::parse(name.trim());
        if !PaymentMethodKind::CONFIGURABLE.contains(&kind) {
            return Err(err(
                &format!("payments.stripe.payment_method_types[{i}]"),
                format!("`{name}` is not one of card, us_bank_account, sepa_debit"),
            ));
        }
        if payment_method_types.contains(&kind) {
            return Err(err(
                &format!("payments.stripe.payment_method_types[{i}]"),
                format!("`{name}` is listed twice"),
            ));
        }
        payment_method_types.push(kind);
    }
    if payment_method_types.is_empty() {
        return Err(err(
            "payments.stripe.payment_method_types",
            "must list at least one of card, us_bank_account, sepa_debit".into(),
        ));
    }

    Ok(StripeConfig {
        api_base,
        secret_key,
        webhook_secrets,
        payment_method_types,
    })
}

/// How a mail account signs in.
enum Auth {
    Password,
    OAuth2,
}

/// `auth`, defaulting to `oauth2` when an `oauth2` section is present.
fn parse_auth(auth: Option<&str>, has_oauth2_section: bool) -> Result<Auth, String> {
    match auth.map(str::trim) {
        None if has_oauth2_section => Ok(Auth::OAuth2),
        None | Some("password") => Ok(Auth::Password),
        Some("oauth2") => Ok(Auth::OAuth2),
        Some(other) => Err(format!("`{other}` is not one of password, oauth2")),
    }
}

fn parse_tls(s: &str) -> Result<TlsMode, String> {
    match s {
        "none" => Ok(TlsMode::None),
        "starttls" => Ok(TlsMode::StartTls),
        "tls" => Ok(TlsMode::Tls),
        other => Err(format!("`{other}` is not one of none, starttls, tls")),
    }
}

impl Config {
    pub fn is_staff(&self, address: &EmailAddress) -> bool {
        self.staff_member(address).is_some()
    }

    pub fn staff_member(&self, address: &EmailAddress) -> Option<&StaffMember> {
        self.staff.iter().find(|s| s.email.same_mailbox(address))
    }

    /// The staff member `who` names: an address, or a name / the local part
    /// of an address, case-insensitively (`#assign alice`).
    pub fn find_staff(&self, who: &str) -> Option<&StaffMember> {
        let who = who.trim();
        if let Ok(address) = EmailAddress::parse(who) {
            return self.staff_member(&address);
        }
        self.staff.iter().find(|s| {
            s.name.eq_ignore_ascii_case(who)
                || s.email.base_local_part().eq_ignore_ascii_case(who)
                || s.name
                    .split_whitespace()
                    .next()
                    .is_some_and(|first| first.eq_ignore_ascii_case(who))
        })
    }

    /// Every address that delivers into Postdesk (never a requester or CC).
    pub fn is_own_address(&self, address: &EmailAddress) -> bool {
        self.mailboxes
            .iter()
            .any(|m| m.address.same_mailbox(address))
            || EmailAddress::parse(self.smtp.from.email.as_ref())
                .map(|a| a.same_mailbox(address))
                .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OptionalMail;

    const MINIMAL: &str = r#"
[database]
url = "sqlite://x.db"
[storage]
dir = "/tmp/pd"
[[mailbox]]
name = "support"
address = "support@example.test"
imap_host = "127.0.0.1"
imap_port = 143
imap_tls = "none"
username = "support@example.test"
password = "pw"
[smtp]
host = "127.0.0.1"
port = 25
tls = "none"
from = "Support <support@example.test>"
[web]
listen = "127.0.0.1:8080"
base_url = "http://localhost:8080/"
[[links.keys]]
id = "k1"
secret = "0123456789abcdef0123456789abcdef"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_toml_with_env(text, "test.toml", &env)
    }

    #[test]
    fn portal_replies_per_hour_defaults_and_must_be_positive() {
        assert_eq!(
            load(MINIMAL, &[]).unwrap().limits.portal_replies_per_hour,
            20
        );
        let c = load(
            &format!("{MINIMAL}\n[limits]\nportal_replies_per_hour = 3\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.limits.portal_replies_per_hour, 3);
        let Err(e) = load(
            &format!("{MINIMAL}\n[limits]\nportal_replies_per_hour = 0\n"),
            &[],
        ) else {
            panic!("0 was accepted");
        };
        let e = e.to_string();
        assert!(
            e.contains("test.toml") && e.contains("limits.portal_replies_per_hour"),
            "{e}"
        );
    }

    #[test]
    fn trusted_proxies_default_to_none_and_a_bad_one_names_its_key() {
        assert!(load(MINIMAL, &[]).unwrap().web.trusted_proxies.is_empty());
        let with = |list: &str| {
            load(
                &MINIMAL.replacen("[web]\n", &format!("[web]\ntrusted_proxies = {list}\n"), 1),
                &[],
            )
        };
        let c = with(r#"["127.0.0.1", "10.0.0.0/8"]"#).unwrap();
        assert!(!c.web.trusted_proxies.is_empty());
        let Err(e) = with(r#"["127.0.0.1", "proxy.internal"]"#) else {
            panic!("a host name was accepted");
        };
        let e = e.to_string();
        assert!(
            e.contains("test.toml")
                && e.contains("web.trusted_proxies")
                && e.contains("proxy.internal"),
            "{e}"
        );
    }

    #[test]
    fn a_logo_url_must_be_one_plain_https_url() {
        let with_logo = |url: &str| {
            load(
                &format!("{MINIMAL}\n[branding]\nlogo_url = \"{url}\"\n"),
                &[],
            )
        };
        let c = with_logo("https://cdn.example.test/logo.png").unwrap();
        assert_eq!(
            c.branding.logo_url.as_deref(),
            Some("https://cdn.example.test/logo.png")
        );
        for bad in [
            "javascript:alert(1)",
            "https://x.test/a b.png",
            "https://x.test/a.png; img-src *",
            "https://",
        ] {
            let Err(e) = with_logo(bad) else {
                panic!("{bad} was accepted");
            };
            let e = e.to_string();
            assert!(
                e.contains("branding.logo_url") && e.contains("test.toml"),
                "{e}"
            );
        }
    }

    #[test]
    fn minimal_file_loads_with_defaults() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.tickets.prefix, "T-");
        assert_eq!(c.tickets.unknown_senders, UnknownSenderPolicy::Create);
        assert_eq!(c.mailboxes[0].folder, "INBOX");
        assert_eq!(c.mailboxes[0].default_priority, Priority::Medium);
        assert_eq!(c.web.base_url, "http://localhost:8080");
        assert_eq!(c.limits.max_message_bytes, 25 * 1024 * 1024);
    }

    #[test]
    fn schedules_default_and_bad_ones_name_their_key() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(c.company.timezone, chrono_tz::UTC);
        assert_eq!(c.schedules.dunning_stages, [-3, 0, 7, 14, 30]);
        assert_eq!(c.schedules.expiry_days, [45, 30, 14, 7, 1]);
        assert_eq!(c.schedules.autopay_attempts, 3);
        assert!(c.schedules.optional_reminders.is_empty());
        // Every job is on by default, at its default time.
        let crons = [
            (&c.schedules.dunning, "0 9 * * *"),
            (&c.schedules.recurring, "0 6 * * *"),
            (&c.schedules.autopay, "30 * * * *"),
            (&c.schedules.expiry, "0 8 * * *"),
            (&c.schedules.sla, "*/5 * * * *"),
            (&c.schedules.waiting, "0 10 * * *"),
            (&c.schedules.purge, "30 3 * * *"),
            (&c.schedules.statement, "0 7 1 * *"),
            (&c.schedules.report, "0 7 1 * *"),
        ];
        for (job, cron) in crons {
            assert_eq!(job.cron.as_ref().map(|c| c.expression.as_str()), Some(cron));
        }

        let c = load(
            &format!(
                "{MINIMAL}\n[company]\ntimezone = \"America/New_York\"\n\
                 [schedules]\noptional_reminders = [\"dunning\", \"expiry\", \"dunning\"]\n\
                 [schedules.dunning]\ncron = \"15 8 * * 1-5\"\nstages = [10, -5, 0]\n\
                 [schedules.expiry]\nenabled = false\n"
            ),
            &[("POSTDESK__SCHEDULES__RECURRING__CRON", "0 7 1 * *")],
        )
        .unwrap();
        assert_eq!(c.company.timezone.name(), "America/New_York");
        assert_eq!(c.schedules.dunning_stages, [-5, 0, 10]);
        assert!(c.schedules.expiry.cron.is_none());
        assert_eq!(
            c.schedules.optional_reminders,
            [OptionalMail::Dunning, OptionalMail::ExpiryAlerts]
        );
        assert_eq!(
            c.schedules.optional_reminder(OptionalMail::CardExpiry),
            None
        );
        assert_eq!(
            c.schedules.optional_reminder(OptionalMail::Dunning),
            Some(OptionalMail::Dunning)
        );
        assert_eq!(
            c.schedules
                .recurring
                .cron
                .as_ref()
                .map(|c| c.expression.as_str()),
            Some("0 7 1 * *")
        );

        for (extra, key, needle) in [
            (
                "[schedules.dunning]\ncron = \"0 9 * *\"\n",
                "schedules.dunning.cron",
                "expected 5 fields",
            ),
            (
                "[schedules.recurring]\ncron = \"0 25 * * *\"\n",
                "schedules.recurring.cron",
                "not a valid cron expression",
            ),
            (
                "[company]\ntimezone = \"Mars/Olympus_Mons\"\n",
                "company.timezone",
                "IANA time zone",
            ),
            (
                "[schedules.autopay]\nattempts = 0\n",
                "schedules.autopay.attempts",
                "between 1 and 10",
            ),
            (
                "[schedules.expiry]\ndays = [0]\n",
                "schedules.expiry.days",
                "between 1 and 3650",
            ),
            (
                "[schedules.waiting]\nremind_after_days = 5\nclose_after_days = 5\n",
                "schedules.waiting.close_after_days",
                "more than remind_after_days",
            ),
            (
                "[schedules]\noptional_reminders = [\"statement\"]\n",
                "schedules.optional_reminders",
                "not a reminder kind; known: expiry, card-expiry, dunning",
            ),
            (
                "[schedules.purge]\nraw_mail_days = 1\n",
                "schedules.purge.raw_mail_days",
                "at least 7",
            ),
            (
                "[audit]\nretention_days = 7\n",
                "audit.retention_days",
                "0 (keep for good) or 30 to 36500",
            ),
            (
                "[company]\nbusiness_hours = \"17:00-09:00\"\n",
                "company.business_hours",
                "closing time must be after opening time",
            ),
            (
                "[company]\nbusiness_days = [\"mon\", \"funday\"]\n",
                "company.business_days[1]",
                "not a weekday",
            ),
            (
                "[company]\nholidays = [\"25.12.2026\"]\n",
                "company.holidays[0]",
                "not a date",
            ),
            (
                "[mail_auth]\ntrusted_authserv_id = \"mx.example.com; dmarc=pass\"\n",
                "mail_auth.trusted_authserv_id",
                "not an authserv-id",
            ),
        ] {
            match load(&format!("{MINIMAL}\n{extra}"), &[]) {
                Err(ConfigError::Key {
                    key: k,
                    message,
                    file,
                }) => {
                    assert_eq!(k, key);
                    assert_eq!(file, "test.toml");
                    assert!(message.contains(needle), "{key}: {message}");
                }
                other => panic!("{key}: expected a key error, got {other:?}"),
            }
        }
    }

    #[test]
    fn environment_overrides_keys_and_array_entries() {
        let c = load(
            MINIMAL,
            &[
                ("POSTDESK__SMTP__PORT", "2525"),
                ("POSTDESK__MAILBOX__0__PASSWORD", "from-env"),
                ("POSTDESK__TICKETS__UNKNOWN_SENDERS", "reject"),
            ],
        )
        .unwrap();
        assert_eq!(c.smtp.port, 2525);
        assert_eq!(c.mailboxes[0].password, "from-env");
        assert_eq!(c.tickets.unknown_senders, UnknownSenderPolicy::Reject);
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = MINIMAL.replace(
            "password = \"pw\"",
            &format!("password_file = \"{}\"", secret.display()),
        );
        let c = load(&text, &[]).unwrap();
        assert_eq!(c.mailboxes[0].password, "s3cret");
    }

    #[test]
    fn errors_name_file_and_key() {
        let bad = MINIMAL.replace("imap_tls = \"none\"", "imap_tls = \"ssl\"");
        let e = load(&bad, &[]).unwrap_err().to_string();
        assert!(
            e.contains("test.toml") && e.contains("mailbox[0].imap_tls"),
            "{e}"
        );

        let bad = MINIMAL.replace("port = 25", "port = \"twenty-five\"");
        let e = load(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("smtp.port"), "{e}");

        let bad = format!("{MINIMAL}\n[tickets]\nunknown_senders = \"maybe\"\n");
        let e = load(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("tickets.unknown_senders"), "{e}");

        let bad = MINIMAL.replace("[storage]", "[storage]\ncolour = 1");
        let e = load(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("storage") && e.contains("colour"), "{e}");

        let e = load(MINIMAL, &[("POSTDESK__SMTP__PORT", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("POSTDESK__SMTP__PORT") && e.contains("smtp.port"),
            "{e}"
        );
    }

    const STRIPE: &str = r#"
[payments.stripe]
secret_key = "sk_test_0123456789"
webhook_secrets = ["whsec_old_0123456789", "whsec_new_0123456789"]
"#;

    #[test]
    fn payments_are_off_unless_configured() {
        let c = load(MINIMAL, &[]).unwrap();
        assert!(c.payments.is_none());
        assert!(c.payment_instructions.is_none());
        let c = load(
            &format!("{MINIMAL}\n[payments]\ninstructions = \" Transfer to IBAN DE00 0000. \"\n"),
            &[],
        )
        .unwrap();
        assert!(c.payments.is_none());
        assert_eq!(
            c.payment_instructions.as_deref(),
            Some("Transfer to IBAN DE00 0000.")
        );
    }

    #[test]
    fn stripe_section_loads_with_defaults() {
        let c = load(&format!("{MINIMAL}{STRIPE}"), &[]).unwrap();
        let stripe = c.payments.unwrap();
        assert_eq!(stripe.api_base, "https://api.stripe.com");
        assert_eq!(stripe.secret_key, "sk_test_0123456789");
        assert_eq!(
            stripe.webhook_secrets,
            ["whsec_old_0123456789", "whsec_new_0123456789"]
        );
        assert_eq!(
            stripe.payment_method_types,
            [
                PaymentMethodKind::Card,
                PaymentMethodKind::UsBankAccount,
                PaymentMethodKind::SepaDebit
            ]
        );
        let printed = format!("{stripe:?}");
        assert!(
            !printed.contains("sk_test") && !printed.contains("whsec_"),
            "{printed}"
        );
    }

    #[test]
    fn stripe_secrets_come_from_the_environment_or_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("stripe-key");
        std::fs::write(&key, "sk_live_from_file_0123\n").unwrap();
        let hooks = dir.path().join("stripe-webhooks");
        std::fs::write(&hooks, "whsec_file_one_0123\nwhsec_file_two_0123\n").unwrap();
        let text = format!(
            "{MINIMAL}\n[payments.stripe]\napi_base = \"http://127.0.0.1:9999/\"\n\
             secret_key_file = \"{}\"\nwebhook_secrets_file = \"{}\"\n\
             payment_method_types = [\"card\"]\n",
            key.display(),
            hooks.display()
        );
        let stripe = load(&text, &[]).unwrap().payments.unwrap();
        assert_eq!(stripe.api_base, "http://127.0.0.1:9999");
        assert_eq!(stripe.secret_key, "sk_live_from_file_0123");
        assert_eq!(
            stripe.webhook_secrets,
            ["whsec_file_one_0123", "whsec_file_two_0123"]
        );
        assert_eq!(stripe.payment_method_types, [PaymentMethodKind::Card]);

        // Without anything in the file: all from the environment.
        let stripe = load(
            MINIMAL,
            &[
                (
                    "POSTDESK__PAYMENTS__STRIPE__SECRET_KEY",
                    "rk_live_env_0123456",
                ),
                (
                    "POSTDESK__PAYMENTS__STRIPE__WEBHOOK_SECRETS",
                    "whsec_env_one_0123,whsec_env_two_0123",
                ),
            ],
        )
        .unwrap()
        .payments
        .unwrap();
        assert_eq!(stripe.secret_key, "rk_live_env_0123456");
        assert_eq!(stripe.webhook_secrets.len(), 2);

        // The environment replaces the file's whole list (a scalar array's
        // entries cannot be addressed one by one).
        let stripe = load(
            &format!("{MINIMAL}{STRIPE}"),
            &[(
                "POSTDESK__PAYMENTS__STRIPE__WEBHOOK_SECRETS",
                "whsec_rotated_0123 whsec_new_0123456789",
            )],
        )
        .unwrap()
        .payments
        .unwrap();
        assert_eq!(
            stripe.webhook_secrets,
            ["whsec_rotated_0123", "whsec_new_0123456789"]
        );
    }

    #[test]
    fn stripe_errors_name_file_and_key() {
        let stripe = |replace: &str, with: &str| {
            let text = format!("{MINIMAL}{}", STRIPE.replace(replace, with));
            load(&text, &[]).unwrap_err().to_string()
        };
        let cases = [
            (
                stripe(
                    "webhook_secrets = [\"whsec_old_0123456789\", \"whsec_new_0123456789\"]",
                    "webhook_secrets = []",
                ),
                "payments.stripe.webhook_secrets",
            ),
            (
                stripe("\"whsec_new_0123456789\"", "\"sk_oops_0123456789\""),
                "payments.stripe.webhook_secrets[1]",
            ),
            (
                stripe("sk_test_0123456789", "pk_test_0123456789"),
                "payments.stripe.secret_key",
            ),
            (
                stripe("sk_test_0123456789", ""),
                "payments.stripe.secret_key",
            ),
            (
                stripe(
                    "[payments.stripe]",
                    "[payments.stripe]\napi_base = \"http://api.stripe.com\"",
                ),
                "payments.stripe.api_base",
            ),
            (
                stripe(
                    "[payments.stripe]",
                    "[payments.stripe]\napi_base = \"http://localhost.evil.test\"",
                ),
                "payments.stripe.api_base",
            ),
            (
                stripe(
                    "[payments.stripe]",
                    "[payments.stripe]\npayment_method_types = [\"card\", \"paypal\"]",
                ),
                "payments.stripe.payment_method_types[1]",
            ),
            (
                stripe(
                    "[payments.stripe]",
                    "[payments.stripe]\npayment_method_types = [\"card\", \"card\"]",
                ),
                "payments.stripe.payment_method_types[1]",
            ),
            (
                stripe(
                    "[payments.stripe]",
                    "[payments.stripe]\npayment_method_types = []",
                ),
                "payments.stripe.payment_method_types",
            ),
            (
                stripe("[payments.stripe]", "[payments.stripe]\nsecret = \"x\""),
                "payments.stripe",
            ),
            (
                stripe("secret_key = \"sk_test_0123456789\"", ""),
                "payments.stripe",
            ),
        ];
        for (e, key) in cases {
            assert!(e.contains("test.toml") && e.contains(key), "{key}: {e}");
            assert!(!e.contains("sk_test_0123456789"), "{e}");
        }
    }
}
