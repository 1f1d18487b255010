//! The company's working time: opening hours on working days, in its time
//! zone, minus holidays. First-response targets are counted in it ("Low:
//! the same business day"). Pure date arithmetic, no clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    pub zone: Tz,
    pub open: NaiveTime,
    pub close: NaiveTime,
    /// Monday first.
    pub days: [bool; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

/// No company works ten years without a working day; past this the
/// arithmetic gives up and answers the start time.
const MAX_DAYS: u32 = 3660;

impl BusinessHours {
    /// Monday to Friday, 09:00–17:00, no holidays.
    pub fn office(zone: Tz) -> Self {
        Self {
            zone,
            open: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            close: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
            days: [true, true, true, true, true, false, false],
            holidays: BTreeSet::new(),
        }
    }

    /// Parses `09:00-17:00`.
    pub fn parse_hours(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
        let bad = || format!("`{text}` is not opening hours like 09:00-17:00");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let open = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
        let close = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
        if close <= open {
            return Err(format!("`{text}`: closing time must be after opening time"));
        }
        Ok((open, close))
    }

    /// Parses a weekday name (`mon`, `Monday`) into its index from Monday.
    pub fn parse_day(text: &str) -> Result<usize, String> {
        text.trim()
            .parse::<Weekday>()
            .map(|d| d.num_days_from_monday() as usize)
            .map_err(|_| format!("`{text}` is not a weekday (mon, tue, …)"))
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        self.days[day.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&day)
    }

    /// The instant a local wall-clock time of `day` happens (the later
    /// side of a DST gap, the first of a repeated hour).
    fn at(&self, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let mut local = day.and_time(time);
        for _ in 0..8 {
            match self.zone.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                    return t.with_timezone(&Utc)
                }
                chrono::LocalResult::None => local += Duration::minutes(15),
            }
        }
        local.and_utc()
    }

    /// `minutes` of working time after `start` (working time that has
    /// already begun counts from `start`).
    pub fn add_working_minutes(&self, start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let mut remaining = Duration::minutes(minutes.max(0));
        let mut day = start.with_timezone(&self.zone).date_naive();
        for _ in 0..MAX_DAYS {
            if self.is_working_day(day) {
                let open = self.at(day, self.open).max(start);
                let close = self.at(day, self.close);
                if open < close {
                    let available = close - open;
                    if remaining <= available {
                        return open + remaining;
                    }
                    remaining -= available;
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        start
    }

    /// The close of the working day `start` falls in; after closing time or
    /// on a day off, the close of the next working day.
    pub fn end_of_working_day(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        let mut day = start.with_timezone(&self.zone).date_naive();
        for _ in 0..MAX_DAYS {
            if self.is_working_day(day) {
                let close = self.at(day, self.close);
                if start < close {
                    return close;
                }
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin() -> BusinessHours {
        let mut h = BusinessHours::office("Europe/Berlin".parse().unwrap());
        h.holidays.insert("2026-12-24".parse().unwrap());
        h.holidays.insert("2026-12-25".parse().unwrap());
        h
    }

    #[test]
    fn working_minutes_skip_nights_weekends_and_holidays() {
        let h = berlin();
        // Tuesday 10:00 Berlin (09:00 UTC) + 30 min.
        assert_eq!(
            h.add_working_minutes(at("2026-12-01T09:00:00Z"), 30),
            at("2026-12-01T09:30:00Z")
        );
        // Tuesday 16:30 + 2 h: 30 min today, 90 min from Wednesday 09:00.
        assert_eq!(
            h.add_working_minutes(at("2026-12-01T15:30:00Z"), 120),
            at("2026-12-02T09:30:00Z")
        );
        // Saturday night: from Monday 09:00.
        assert_eq!(
            h.add_working_minutes(at("2026-12-05T22:00:00Z"), 30),
            at("2026-12-07T08:30:00Z")
        );
        // Wednesday 23 December 16:00 + 2 h: Christmas Eve and Day are
        // holidays, then the weekend: Monday 28th 10:00.
        assert_eq!(
            h.add_working_minutes(at("2026-12-23T15:00:00Z"), 120),
            at("2026-12-28T09:00:00Z")
        );
    }

    #[test]
    fn the_same_working_day_ends_at_closing_time() {
        let h = berlin();
        assert_eq!(
            h.end_of_working_day(at("2026-12-01T07:00:00Z")),
            at("2026-12-01T16:00:00Z")
        );
        assert_eq!(
            h.end_of_working_day(at("2026-12-01T15:59:00Z")),
            at("2026-12-01T16:00:00Z")
        );
        // After closing on Friday: Monday's close.
        assert_eq!(
            h.end_of_working_day(at("2026-12-04T17:00:00Z")),
            at("2026-12-07T16:00:00Z")
        );
        // Summer time: 17:00 Berlin is 15:00 UTC.
        assert_eq!(
            h.end_of_working_day(at("2026-07-01T06:00:00Z")),
            at("2026-07-01T15:00:00Z")
        );
    }

    #[test]
    fn hours_and_days_parse() {
        assert!(BusinessHours::parse_hours("08:30-18:00").is_ok());
        assert!(BusinessHours::parse_hours("18:00-08:00").is_err());
        assert!(BusinessHours::parse_hours("9-5").is_err());
        assert_eq!(BusinessHours::parse_day("Sat"), Ok(5));
        assert!(BusinessHours::parse_day("someday").is_err());
    }
}
