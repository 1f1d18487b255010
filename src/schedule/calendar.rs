//! Calendar days as a client sees them: "today" and "the due date" are days
//! in the client's IANA time zone (the company's when the client has none),
//! never UTC days. Pure functions of an instant and a zone.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::clock::Millis;
use crate::config::schedules::parse_timezone;
use crate::config::Config;

/// The zone of a client whose stored zone is `stored`; a missing or
/// unknown name falls back to the company's zone.
pub fn client_zone(config: &Config, stored: Option<&str>) -> Tz {
    stored
        .and_then(|name| parse_timezone(name).ok())
        .unwrap_or(config.company.timezone)
}

/// The calendar day in `zone` at instant `at`.
pub fn local_date(at: Millis, zone: Tz) -> NaiveDate {
    let utc = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
    utc.with_timezone(&zone).date_naive()
}

/// The instant `day` begins in `zone` (the first valid local time when a DST
/// change skips midnight).
pub fn start_of_day(day: NaiveDate, zone: Tz) -> Millis {
    let mut time = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        match zone.from_local_datetime(&time) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                return t.timestamp_millis()
            }
            chrono::LocalResult::None => time += chrono::Duration::minutes(30),
        }
    }
    time.and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn the_day_is_the_clients_day() {
        let auckland: Tz = "Pacific/Auckland".parse().unwrap();
        let new_york: Tz = "America/New_York".parse().unwrap();
        let instant = at("2026-11-30T20:00:00Z");
        assert_eq!(
            local_date(instant, chrono_tz::UTC).to_string(),
            "2026-11-30"
        );
        assert_eq!(local_date(instant, auckland).to_string(), "2026-12-01");
        assert_eq!(
            local_date(at("2026-12-01T03:00:00Z"), new_york).to_string(),
            "2026-11-30"
        );
    }

    #[test]
    fn days_start_at_local_midnight_across_dst() {
        let new_york: Tz = "America/New_York".parse().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            start_of_day(day("2026-11-01"), new_york),
            at("2026-11-01T04:00:00Z")
        );
        assert_eq!(
            start_of_day(day("2026-11-02"), new_york),
            at("2026-11-02T05:00:00Z")
        );
        // Santiago skips midnight when DST starts (2026-09-06 00:00 -> 01:00).
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let start = start_of_day(day("2026-09-06"), santiago);
        assert_eq!(local_date(start, santiago), day("2026-09-06"));
    }
}
