//! What the monthly mails (statement, service report) share: which month a
//! pass reports on, and one run per client and month. The month is the one
//! before the job's last cron time — when no pass ran since that time (the
//! pass the cron started, or the first after downtime over it) and it is
//! less than a week ago. The daemon's first start counts as a pass, so a
//! fresh installation does not mail months nobody asked about.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use super::calendar::{client_zone, start_of_day};
use super::target_id;
use crate::app::App;
use crate::clock::Millis;
use crate::config::JobSchedule;
use crate::db::job_runs::{self, JobRun, NewRun};
use crate::db::{contacts, Conn};

/// How long after its cron time a monthly mail is still caught up.
const CATCH_UP_DAYS: i64 = 7;

/// A calendar month in a client's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `2026-11`: the stage of the run.
    pub month: String,
    /// "November 2026"
    pub label: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    /// `[from, to)` as instants.
    pub from: Millis,
    pub to: Millis,
}

impl Period {
    /// Parses a stage (`2026-11`) into the month in `zone`.
    pub fn of(month: &str, zone: Tz) -> Option<Period> {
        let first_day = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
        let next = first_day.checked_add_months(chrono::Months::new(1))?;
        Some(Period {
            month: month.to_string(),
            label: first_day.format("%B %Y").to_string(),
            first_day,
            last_day: next.pred_opt()?,
            from: start_of_day(first_day, zone),
            to: start_of_day(next, zone),
        })
    }
}

/// A monthly run's client and month, as its mail needs them.
pub struct ClientMonth {
    pub client_id: i64,
    pub name: String,
    pub zone: Tz,
    pub period: Period,
    /// Whether the client gets the statement and the service report.
    pub statement: bool,
    pub report: bool,
}

/// Reads the client and month of `run` (`client:<id>`, stage `2026-11`).
pub async fn client_month(app: &App, tx: &mut Conn, run: &JobRun) -> anyhow::Result<ClientMonth> {
    let client_id = target_id(run, "client")?;
    let name = contacts::client_name(tx, client_id)
        .await?
        .unwrap_or_default();
    let (statement, report) = contacts::client_optional_mail(tx, client_id).await?;
    let zone = client_zone(
        &app.config,
        contacts::client_timezone(tx, client_id).await?.as_deref(),
    );
    let Some(period) = Period::of(&run.stage, zone) else {
        anyhow::bail!("{} run {} has a malformed month", run.kind, run.id);
    };
    Ok(ClientMonth {
        client_id,
        name,
        zone,
        period,
        statement,
        report,
    })
}

/// The month (`2026-11`) a pass of `job` at `at` reports on, if any;
/// `last_pass` is when the job's previous pass ran.
pub fn due_month(
    app: &App,
    job: &JobSchedule,
    at: Millis,
    last_pass: Option<Millis>,
) -> Option<String> {
    let cron = job.cron.as_ref()?;
    let zone = app.config.company.timezone;
    let now = chrono::DateTime::from_timestamp_millis(at)?;
    let fired = cron.last_at_or_before(now, zone)?;
    if now - fired > chrono::Duration::days(CATCH_UP_DAYS) {
        return None;
    }
    if last_pass.is_some_and(|last| last >= fired.timestamp_millis()) {
        return None;
    }
    let local = fired.with_timezone(&zone).date_naive();
    let reported = local
        .with_day(1)?
        .checked_sub_months(chrono::Months::new(1))?;
    Some(format!("{:04}-{:02}", reported.year(), reported.month()))
}

/// One run per client that gets this mail, for the month due at `at`.
pub async fn plan(
    app: &App,
    tx: &mut Conn,
    at: Millis,
    kind: &'static str,
    job: &JobSchedule,
    wanted: fn(statement: bool, report: bool) -> bool,
) -> anyhow::Result<Vec<NewRun>> {
    let last_pass = job_runs::last_pass(tx, kind).await?;
    let Some(month) = due_month(app, job, at, last_pass) else {
        return Ok(Vec::new());
    };
    Ok(contacts::clients_for_monthly(tx)
        .await?
        .into_iter()
        .filter(|(_, _, statement, report)| wanted(*statement, *report))
        .map(|(id, _, _, _)| NewRun {
            kind,
            target: format!("client:{id}"),
            stage: month.clone(),
            client_id: Some(id),
            due_at: at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_its_days_in_the_clients_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let p = Period::of("2026-11", berlin).unwrap();
        assert_eq!(p.label, "November 2026");
        assert_eq!(p.last_day.to_string(), "2026-11-30");
        assert_eq!(
            p.from,
            chrono::DateTime::parse_from_rfc3339("2026-10-31T23:00:00Z")
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            p.to,
            chrono::DateTime::parse_from_rfc3339("2026-11-30T23:00:00Z")
                .unwrap()
                .timestamp_millis()
        );
        assert!(Period::of("2026-13", berlin).is_none());
    }
}
