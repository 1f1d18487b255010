//! `[company]` and `[schedules]`: the company's time zone and when each
//! scheduled job runs (cron), with the stages and retries of the series
//! (dunning stages, expiry alert days, auto-pay attempts). Parsing and
//! validation only; the scheduler itself lives in `crate::schedule`.

use std::str::FromStr;

use serde::Deserialize;

use super::ConfigError;
use crate::domain::{BusinessHours, OptionalMail};

/// The time zone dates are computed in when a client has none of its own,
/// and the working time first responses are counted in.
#[derive(Debug, Clone)]
pub struct CompanyConfig {
    pub timezone: chrono_tz::Tz,
    pub business_hours: BusinessHours,
}

/// A cron expression as written in the config, ready to compute fire times.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// As the operator wrote it (shown by `jobs list`).
    pub expression: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    /// Accepts the usual 5-field form (`min hour dom month dow`, Sunday = 0
    /// or 7), the 6- and 7-field forms with seconds (and year), and the
    /// `@daily`-style shortcuts.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let text = expression.trim();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let normalized = if text.starts_with('@') {
            text.to_string()
        } else if fields.len() == 5 {
            let dow = standard_day_of_week(fields[4])?;
            format!(
                "0 {} {} {} {} {}",
                fields[0], fields[1], fields[2], fields[3], dow
            )
        } else if fields.len() == 6 || fields.len() == 7 {
            text.to_string()
        } else {
            return Err(format!(
                "`{text}` is not a cron expression: expected 5 fields \
                 (minute hour day-of-month month day-of-week), got {}",
                fields.len()
            ));
        };
        let schedule = cron::Schedule::from_str(&normalized)
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        if schedule.upcoming(chrono::Utc).next().is_none() {
            return Err(format!("`{text}` never fires"));
        }
        Ok(Self {
            expression: text.to_string(),
            schedule,
        })
    }

    /// The first fire time strictly after `after`, in `zone`'s wall clock.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        zone: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule
            .after(&after.with_timezone(&zone))
            .next()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

impl CronSchedule {
    /// The last fire time at or before `at`, in `zone`'s wall clock.
    pub fn last_at_or_before(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        zone: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let just_after = at + chrono::Duration::seconds(1);
        self.schedule
            .after(&just_after.with_timezone(&zone))
            .next_back()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// Standard cron numbers days 0–7 from Sunday; the `cron` crate numbers them
/// 1–7 from Sunday. Names mean the same to both, so numbers become names.
fn standard_day_of_week(field: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let name = |n: &str| -> Result<&'static str, String> {
        match n.parse::<usize>() {
            Ok(i) if i < NAMES.len() => Ok(NAMES[i]),
            Ok(_) => Err(format!("day of week `{n}` is out of range (0-7)")),
            Err(_) => Err(String::new()),
        }
    };
    let mut parts = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let translated = match range.split_once('-') {
            Some((a, b)) => match (name(a), name(b)) {
                // 5-7 means Friday to Sunday: Sunday is the first day here.
                (Ok(a), Ok(_)) if b == "7" && step.is_none() => format!("{a}-sat,sun"),
                (Ok(a), Ok(b)) => format!("{a}-{b}"),
                (Err(e), _) | (_, Err(e)) if !e.is_empty() => return Err(e),
                _ => range.to_string(),
            },
            None => match name(range) {
                Ok(n) => n.to_string(),
                Err(e) if !e.is_empty() => return Err(e),
                Err(_) => range.to_string(),
            },
        };
        parts.push(match step {
            Some(s) => format!("{translated}/{s}"),
            None => translated,
        });
    }
    Ok(parts.join(","))
}

/// When and how each scheduled job runs.
#[derive(Debug, Clone)]
pub struct SchedulesConfig {
    pub dunning: JobSchedule,
    /// Days relative to the due date (−3: three days before), ascending.
    pub dunning_stages: Vec<i32>,
    pub recurring: JobSchedule,
    /// Auto-pay charges and their retries.
    pub autopay: JobSchedule,
    pub autopay_attempts: u32,
    pub autopay_retry_days: u32,
    pub expiry: JobSchedule,
    /// Days before an expiry that an alert goes out, descending.
    pub expiry_days: Vec<u32>,
    /// First-response watch.
    pub sla: JobSchedule,
    /// "Due soon" this long before a first response is due.
    pub sla_warning: std::time::Duration,
    /// Waiting-on-client reminders and auto-close.
    pub waiting: JobSchedule,
    pub waiting_remind_after_days: u32,
    pub waiting_close_after_days: u32,
    /// Deletion of old raw mail.
    pub purge: JobSchedule,
    pub raw_mail_days: u32,
    /// Monthly statement mails (optional per client and contact).
    pub statement: JobSchedule,
    /// Monthly service reports (optional per client and contact).
    pub report: JobSchedule,
    /// Reminder kinds the operator made optional: each contact may decline
    /// them (preferences page, one-click unsubscribe). Empty by default:
    /// every reminder goes to everyone it is for.
    pub optional_reminders: Vec<OptionalMail>,
}

impl SchedulesConfig {
    /// `kind` when the operator marked that reminder optional: what the
    /// sender passes as the mail's optional kind (skip who declined it, add
    /// the unsubscribe headers); `None` when everyone gets it.
    pub fn optional_reminder(&self, kind: OptionalMail) -> Option<OptionalMail> {
        self.optional_reminders.contains(&kind).then_some(kind)
    }
}

/// One job's cron, or `None` when the operator switched it off.
#[derive(Debug, Clone)]
pub struct JobSchedule {
    pub cron: Option<CronSchedule>,
}

// ---------------------------------------------------------------- raw shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompany {
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_business_hours")]
    business_hours: String,
    #[serde(default = "default_business_days")]
    business_days: Vec<String>,
    /// Dates (`2026-12-25`) with no working time.
    #[serde(default)]
    holidays: Vec<String>,
}
impl Default for RawCompany {
    fn default() -> Self {
        Self {
            timezone: default_timezone(),
            business_hours: default_business_hours(),
            business_days: default_business_days(),
            holidays: Vec::new(),
        }
    }
}
fn default_business_hours() -> String {
    "09:00-17:00".into()
}
fn default_business_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(String::from)
        .to_vec()
}
fn default_timezone() -> String {
    "UTC".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedules {
    #[serde(default)]
    dunning: RawDunning,
    #[serde(default)]
    recurring: RawJob,
    #[serde(default)]
    autopay: RawAutopay,
    #[serde(default)]
    expiry: RawExpiry,
    #[serde(default)]
    sla: RawSla,
    #[serde(default)]
    waiting: RawWaiting,
    #[serde(default)]
    purge: RawPurge,
    #[serde(default)]
    statement: RawJob,
    #[serde(default)]
    report: RawJob,
    /// Names of reminder kinds the contacts may decline.
    #[serde(default)]
    optional_reminders: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSla {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_sla_warning")]
    warn_minutes: u64,
}
impl Default for RawSla {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            warn_minutes: default_sla_warning(),
        }
    }
}
fn default_sla_warning() -> u64 {
    15
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiting {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_remind_after")]
    remind_after_days: u32,
    #[serde(default = "default_close_after")]
    close_after_days: u32,
}
impl Default for RawWaiting {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            remind_after_days: default_remind_after(),
            close_after_days: default_close_after(),
        }
    }
}
fn default_remind_after() -> u32 {
    3
}
fn default_close_after() -> u32 {
    7
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurge {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_raw_mail_days")]
    raw_mail_days: u32,
}
impl Default for RawPurge {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            raw_mail_days: default_raw_mail_days(),
        }
    }
}
fn default_raw_mail_days() -> u32 {
    365
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}
impl Default for RawJob {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDunning {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_dunning_stages")]
    stages: Vec<i32>,
}
impl Default for RawDunning {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            stages: default_dunning_stages(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutopay {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_autopay_attempts")]
    attempts: u32,
    #[serde(default = "default_autopay_retry_days")]
    retry_days: u32,
}
impl Default for RawAutopay {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            attempts: default_autopay_attempts(),
            retry_days: default_autopay_retry_days(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpiry {
    cron: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_expiry_days")]
    days: Vec<u32>,
}
impl Default for RawExpiry {
    fn default() -> Self {
        Self {
            cron: None,
            enabled: true,
            days: default_expiry_days(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_dunning_stages() -> Vec<i32> {
    vec![-3, 0, 7, 14, 30]
}
fn default_autopay_attempts() -> u32 {
    3
}
fn default_autopay_retry_days() -> u32 {
    3
}
fn default_expiry_days() -> Vec<u32> {
    vec![45, 30, 14, 7, 1]
}

// ---------------------------------------------------------------- validation

pub(super) fn validate_company(
    raw: RawCompany,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<CompanyConfig, ConfigError> {
    let timezone = parse_timezone(&raw.timezone).map_err(|e| err("company.timezone", e))?;
    let (open, close) = BusinessHours::parse_hours(&raw.business_hours)
        .map_err(|e| err("company.business_hours", e))?;
    let mut days = [false; 7];
    for (i, name) in raw.business_days.iter().enumerate() {
        let day = BusinessHours::parse_day(name)
            .map_err(|e| err(&format!("company.business_days[{i}]"), e))?;
        days[day] = true;
    }
    if !days.contains(&true) {
        return Err(err(
            "company.business_days",
            "must name at least one working day".into(),
        ));
    }
    let mut holidays = std::collections::BTreeSet::new();
    for (i, text) in raw.holidays.iter().enumerate() {
        let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
            err(
                &format!("company.holidays[{i}]"),
                format!("`{text}` is not a date like 2026-12-25"),
            )
        })?;
        holidays.insert(day);
    }
    Ok(CompanyConfig {
        timezone,
        business_hours: BusinessHours {
            zone: timezone,
            open,
            close,
            days,
            holidays,
        },
    })
}

/// An IANA zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!("`{name}` is not an IANA time zone (for example Europe/Berlin or America/New_York)")
    })
}

pub(super) fn validate_schedules(
    raw: RawSchedules,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<SchedulesConfig, ConfigError> {
    let job = |name: &str, cron: Option<String>, enabled: bool, default: &str| {
        let key = format!("schedules.{name}.cron");
        if !enabled {
            return Ok(JobSchedule { cron: None });
        }
        let text = cron.unwrap_or_else(|| default.to_string());
        CronSchedule::parse(&text)
            .map(|c| JobSchedule { cron: Some(c) })
            .map_err(|e| err(&key, e))
    };
    let dunning = job(
        "dunning",
        raw.dunning.cron,
        raw.dunning.enabled,
        "0 9 * * *",
    )?;
    let recurring = job(
        "recurring",
        raw.recurring.cron,
        raw.recurring.enabled,
        "0 6 * * *",
    )?;
    let autopay = job(
        "autopay",
        raw.autopay.cron,
        raw.autopay.enabled,
        "30 * * * *",
    )?;
    let expiry = job("expiry", raw.expiry.cron, raw.expiry.enabled, "0 8 * * *")?;
    let sla = job("sla", raw.sla.cron, raw.sla.enabled, "*/5 * * * *")?;
    let waiting = job(
        "waiting",
        raw.waiting.cron,
        raw.waiting.enabled,
        "0 10 * * *",
    )?;
    let purge = job("purge", raw.purge.cron, raw.purge.enabled, "30 3 * * *")?;
    let statement = job(
        "statement",
        raw.statement.cron,
        raw.statement.enabled,
        "0 7 1 * *",
    )?;
    let report = job("report", raw.report.cron, raw.report.enabled, "0 7 1 * *")?;
    if raw.sla.warn_minutes > 24 * 60 {
        return Err(err(
            "schedules.sla.warn_minutes",
            "must be at most 1440 (a day)".into(),
        ));
    }
    let (remind, close) = (raw.waiting.remind_after_days, raw.waiting.close_after_days);
    if remind == 0 || close <= remind {
        return Err(err(
            "schedules.waiting.close_after_days",
            format!("must be more than remind_after_days ({remind}), which must be at least 1"),
        ));
    }
    if raw.purge.raw_mail_days < 7 {
        return Err(err(
            "schedules.purge.raw_mail_days",
            "must be at least 7: raw mail is the evidence of what arrived".into(),
        ));
    }

    let mut dunning_stages = raw.dunning.stages;
    dunning_stages.sort_unstable();
    dunning_stages.dedup();
    if dunning_stages.is_empty() {
        return Err(err(
            "schedules.dunning.stages",
            "must list at least one stage (days relative to the due date)".into(),
        ));
    }
    if let Some(bad) = dunning_stages.iter().find(|d| d.abs() > 3650) {
        return Err(err(
            "schedules.dunning.stages",
            format!("{bad} days is more than ten years from the due date"),
        ));
    }
    if raw.autopay.attempts == 0 || raw.autopay.attempts > 10 {
        return Err(err(
            "schedules.autopay.attempts",
            "must be between 1 and 10".into(),
        ));
    }
    if raw.autopay.retry_days == 0 || raw.autopay.retry_days > 60 {
        return Err(err(
            "schedules.autopay.retry_days",
            "must be between 1 and 60".into(),
        ));
    }
    let mut expiry_days = raw.expiry.days;
    expiry_days.sort_unstable_by(|a, b| b.cmp(a));
    expiry_days.dedup();
    if expiry_days.is_empty() || expiry_days.iter().any(|d| *d == 0 || *d > 3650) {
        return Err(err(
            "schedules.expiry.days",
            "must list days before expiry between 1 and 3650".into(),
        ));
    }
    let mut optional_reminders = Vec::new();
    for name in &raw.optional_reminders {
        let kind = OptionalMail::parse(name)
            .filter(|k| k.is_reminder())
            .ok_or_else(|| {
                let known: Vec<&str> = OptionalMail::REMINDERS.map(OptionalMail::as_str).to_vec();
                err(
                    "schedules.optional_reminders",
                    format!(
                        "\"{name}\" is not a reminder kind; known: {}",
                        known.join(", ")
                    ),
                )
            })?;
        if !optional_reminders.contains(&kind) {
            optional_reminders.push(kind);
        }
    }
    Ok(SchedulesConfig {
        dunning,
        dunning_stages,
        recurring,
        autopay,
        autopay_attempts: raw.autopay.attempts,
        autopay_retry_days: raw.autopay.retry_days,
        expiry,
        expiry_days,
        sla,
        sla_warning: std::time::Duration::from_secs(raw.sla.warn_minutes * 60),
        waiting,
        waiting_remind_after_days: raw.waiting.remind_after_days,
        waiting_close_after_days: raw.waiting.close_after_days,
        purge,
        raw_mail_days: raw.purge.raw_mail_days,
        statement,
        report,
        optional_reminders,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn five_fields_fire_in_the_company_zone() {
        let daily = CronSchedule::parse("0 9 * * *").unwrap();
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // 09:00 in Berlin in winter is 08:00 UTC.
        assert_eq!(
            daily.next_after(at("2026-12-05T08:00:00Z"), berlin),
            Some(at("2026-12-06T08:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-12-05T07:59:00Z"), berlin),
            Some(at("2026-12-05T08:00:00Z"))
        );
        // and 07:00 UTC in summer.
        assert_eq!(
            daily.next_after(at("2026-07-01T00:00:00Z"), berlin),
            Some(at("2026-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn standard_day_of_week_numbers_mean_what_they_mean_in_crontab() {
        let utc = chrono_tz::UTC;
        // 2026-12-05 is a Saturday.
        let monday = CronSchedule::parse("0 9 * * 1").unwrap();
        assert_eq!(
            monday.next_after(at("2026-12-05T00:00:00Z"), utc),
            Some(at("2026-12-07T09:00:00Z"))
        );
        for sunday in ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun"] {
            let s = CronSchedule::parse(sunday).unwrap();
            assert_eq!(
                s.next_after(at("2026-12-05T00:00:00Z"), utc),
                Some(at("2026-12-06T09:00:00Z")),
                "{sunday}"
            );
        }
        let weekdays = CronSchedule::parse("30 8 * * 1-5").unwrap();
        assert_eq!(
            weekdays.next_after(at("2026-12-05T00:00:00Z"), utc),
            Some(at("2026-12-07T08:30:00Z"))
        );
        let weekend = CronSchedule::parse("0 12 * * 6-7").unwrap();
        assert_eq!(
            weekend.next_after(at("2026-12-05T13:00:00Z"), utc),
            Some(at("2026-12-06T12:00:00Z"))
        );
        let every_quarter_hour = CronSchedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            every_quarter_hour.next_after(at("2026-12-05T10:01:00Z"), utc),
            Some(at("2026-12-05T10:15:00Z"))
        );
        assert!(CronSchedule::parse("@daily").is_ok());
        assert!(CronSchedule::parse("0 0 9 * * *").is_ok());
    }

    #[test]
    fn the_last_fire_time_is_found_backwards() {
        let monthly = CronSchedule::parse("0 7 1 * *").unwrap();
        let utc = chrono_tz::UTC;
        assert_eq!(
            monthly.last_at_or_before(at("2026-12-05T10:00:00Z"), utc),
            Some(at("2026-12-01T07:00:00Z"))
        );
        assert_eq!(
            monthly.last_at_or_before(at("2026-12-01T07:00:00Z"), utc),
            Some(at("2026-12-01T07:00:00Z"))
        );
        assert_eq!(
            monthly.last_at_or_before(at("2026-12-01T06:59:59Z"), utc),
            Some(at("2026-11-01T07:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (bad, needle) in [
            ("0 9 * *", "expected 5 fields"),
            ("61 9 * * *", "not a valid cron expression"),
            ("0 9 * * 8", "out of range"),
            ("every day", "expected 5 fields"),
            ("0 9 31 2 *", "never fires"),
        ] {
            let e = CronSchedule::parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_dst_change_keeps_the_wall_clock_time() {
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let daily = CronSchedule::parse("0 9 * * *").unwrap();
        // DST ends 2026-11-01 in New York: 09:00 is 13:00 UTC before, 14:00 after.
        let before = daily.next_after(at("2026-10-31T12:00:00Z"), ny).unwrap();
        let after = daily.next_after(before, ny).unwrap();
        assert_eq!(before, at("2026-10-31T13:00:00Z"));
        assert_eq!(after, at("2026-11-01T14:00:00Z"));
        assert_eq!(
            after.with_timezone(&ny),
            ny.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
        );
    }
}
