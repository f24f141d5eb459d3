//! Opening hours: a time zone, each weekday's open–close ranges and the
//! holidays; whether a moment falls within them and when they open next.
//! Ranges are local times in the zone; `chrono-tz` turns them into instants
//! (daylight saving included).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::models::BusinessHoursRow;
use crate::error::{AppError, ErrorCode};

/// Most open–close ranges one weekday has.
pub const MAX_RANGES_PER_DAY: usize = 8;
/// Most holidays kept.
pub const MAX_HOLIDAYS: usize = 400;
/// How far ahead the next opening is looked for.
const LOOKAHEAD_DAYS: u64 = MAX_HOLIDAYS as u64 + 8;

/// One stretch of a day when the team is there, as local times `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenRange {
    /// From this local time (`00:00`–`23:59`).
    #[schema(example = "09:00")]
    pub open: String,
    /// Until this local time, after `open`; `24:00` is the end of the day.
    #[schema(example = "17:00")]
    pub close: String,
}

/// Each weekday's ranges; a day left out or empty is closed all day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub struct Weekly {
    #[serde(default)]
    pub monday: Vec<OpenRange>,
    #[serde(default)]
    pub tuesday: Vec<OpenRange>,
    #[serde(default)]
    pub wednesday: Vec<OpenRange>,
    #[serde(default)]
    pub thursday: Vec<OpenRange>,
    #[serde(default)]
    pub friday: Vec<OpenRange>,
    #[serde(default)]
    pub saturday: Vec<OpenRange>,
    #[serde(default)]
    pub sunday: Vec<OpenRange>,
}

impl Weekly {
    /// Monday first, with each day's name.
    fn days(&self) -> [(&'static str, &Vec<OpenRange>); 7] {
        [
            ("monday", &self.monday),
            ("tuesday", &self.tuesday),
            ("wednesday", &self.wednesday),
            ("thursday", &self.thursday),
            ("friday", &self.friday),
            ("saturday", &self.saturday),
            ("sunday", &self.sunday),
        ]
    }
}

/// Opening hours as an admin writes them and the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoursBody {
    /// An IANA time zone name; the ranges and holidays are in it.
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    pub weekly: Weekly,
    /// Dates (`YYYY-MM-DD`, in the time zone) closed all day.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["2026-12-25"]))]
    pub holidays: Vec<NaiveDate>,
}

/// Checked opening hours.
#[derive(Debug, Clone)]
pub struct BusinessHours {
    zone: Tz,
    /// Monday first: `[open, close)` in minutes after local midnight, sorted, apart.
    days: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

/// Whether the team is there at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Open,
    /// Closed; opening again at `opens_at`, if it ever does within a year or so.
    Closed {
        opens_at: Option<DateTime<Utc>>,
    },
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidBusinessHours, message)
}

/// `HH:MM` as minutes after midnight; `24:00` only where `end_of_day` may be.
fn minutes(text: &str, end_of_day: bool) -> Option<u16> {
    let (hours, mins) = text.split_once(':')?;
    if hours.len() != 2 || mins.len() != 2 || !hours.bytes().chain(mins.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, mins): (u16, u16) = (hours.parse().ok()?, mins.parse().ok()?);
    let total = hours * 60 + mins;
    match (hours, mins) {
        (0..=23, 0..=59) => Some(total),
        (24, 0) if end_of_day => Some(total),
        _ => None,
    }
}

fn format_minutes(total: u16) -> String {
    format!("{:02}:{:02}", total / 60, total % 60)
}

impl BusinessHours {
    /// Checks hours as written: a known zone, well-formed ranges that do not
    /// overlap, and bounded lists.
    pub fn parse(body: &HoursBody) -> Result<BusinessHours, AppError> {
        let zone: Tz = body.time_zone.parse().map_err(|_| {
            AppError::new(
                ErrorCode::InvalidTimeZone,
                format!("`{}` is not an IANA time zone name (such as Europe/Berlin)", body.time_zone),
            )
        })?;
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (index, (name, ranges)) in body.weekly.days().into_iter().enumerate() {
            if ranges.len() > MAX_RANGES_PER_DAY {
                return Err(invalid(format!("{name} has more than {MAX_RANGES_PER_DAY} ranges")));
            }
            let mut parsed = Vec::with_capacity(ranges.len());
            for range in ranges {
                let open = minutes(&range.open, false).ok_or_else(|| {
                    invalid(format!("{name}: open `{}` is not a time from 00:00 to 23:59", range.open))
                })?;
                let close = minutes(&range.close, true).ok_or_else(|| {
                    invalid(format!("{name}: close `{}` is not a time from 00:01 to 24:00", range.close))
                })?;
                if close <= open {
                    return Err(invalid(format!(
                        "{name}: {}–{} closes before it opens (a range past midnight is two ranges, one each day)",
                        range.open, range.close
                    )));
                }
                parsed.push((open, close));
            }
            parsed.sort_unstable();
            if let Some(pair) = parsed.windows(2).find(|pair| pair[1].0 < pair[0].1) {
                return Err(invalid(format!(
                    "{name}: {}–{} overlaps {}–{}",
                    format_minutes(pair[0].0),
                    format_minutes(pair[0].1),
                    format_minutes(pair[1].0),
                    format_minutes(pair[1].1)
                )));
            }
            days[index] = parsed;
        }
        let holidays: BTreeSet<NaiveDate> = body.holidays.iter().copied().collect();
        if holidays.len() > MAX_HOLIDAYS {
            return Err(invalid(format!("at most {MAX_HOLIDAYS} holidays")));
        }
        if let Some(odd) = holidays.iter().find(|date| !(1970..=9999).contains(&date.year())) {
            return Err(invalid(format!("holiday {odd} is not a date from 1970 to 9999")));
        }
        Ok(BusinessHours { zone, days, holidays })
    }

    /// Is the team there at `now`, and if not, when does it open?
    pub fn at(&self, now: DateTime<Utc>) -> Availability {
        let local = now.with_timezone(&self.zone);
        let today = local.date_naive();
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let weekday = local.weekday().num_days_from_monday() as usize;
        let open_now = !self.holidays.contains(&today)
            && self.days[weekday].iter().any(|&(open, close)| open <= minute && minute < close);
        if open_now {
            Availability::Open
        } else {
            Availability::Closed { opens_at: self.next_opening(today, minute) }
        }
    }

    /// The first opening after local `minute` of `today`.
    fn next_opening(&self, today: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        for offset in 0..LOOKAHEAD_DAYS {
            let date = today.checked_add_days(Days::new(offset))?;
            if self.holidays.contains(&date) {
                continue;
            }
            let weekday = date.weekday().num_days_from_monday() as usize;
            let later_today = |open: &u16| offset > 0 || *open > minute;
            if let Some(&(open, _)) = self.days[weekday].iter().find(|(open, _)| later_today(open)) {
                return self.instant(date, open);
            }
        }
        None
    }

    /// Local `minute` of `date` as an instant; a time that daylight saving
    /// skips is the first minute after the jump.
    fn instant(&self, date: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let local = date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
        (0..=2)
            .find_map(|hours| self.zone.from_local_datetime(&(local + chrono::Duration::hours(hours))).earliest())
            .map(|at| at.with_timezone(&Utc))
    }
}

impl HoursBody {
    /// The hours as stored (they were checked when they were written).
    pub fn from_row(row: &BusinessHoursRow) -> Option<HoursBody> {
        let weekly = match serde_json::from_value(row.weekly.clone()) {
            Ok(weekly) => weekly,
            Err(error) => {
                log::warn!("stored business hours (team {:?}) are unreadable: {error}", row.team_id);
                return None;
            }
        };
        Some(HoursBody { time_zone: row.time_zone.clone(), weekly, holidays: row.holidays.clone() })
    }
}

/// Whether a chat under `hours` (as `queries::business_hours::effective`
/// found them) is within them at `now`: without hours it is always open.
pub fn availability(hours: Option<&BusinessHoursRow>, now: DateTime<Utc>) -> Availability {
    let parsed = hours.and_then(HoursBody::from_row).and_then(|body| BusinessHours::parse(&body).ok());
    match parsed {
        Some(hours) => hours.at(now),
        None => Availability::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(open: &str, close: &str) -> OpenRange {
        OpenRange { open: open.to_owned(), close: close.to_owned() }
    }

    fn weekdays_nine_to_five(zone: &str) -> HoursBody {
        let day = vec![range("09:00", "17:00")];
        HoursBody {
            time_zone: zone.to_owned(),
            weekly: Weekly {
                monday: day.clone(),
                tuesday: day.clone(),
                wednesday: day.clone(),
                thursday: day.clone(),
                friday: day,
                ..Weekly::default()
            },
            holidays: Vec::new(),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().expect("an RFC 3339 instant")
    }

    fn code(body: &HoursBody) -> &'static str {
        BusinessHours::parse(body).err().map_or("ok", |error| error.code.as_str())
    }

    #[test]
    fn hours_are_local_to_their_zone() {
        let hours = BusinessHours::parse(&weekdays_nine_to_five("Europe/Berlin")).expect("valid");
        // Monday 7 December 2026: Berlin is UTC+1.
        assert_eq!(hours.at(utc("2026-12-07T08:00:00Z")), Availability::Open);
        assert_eq!(hours.at(utc("2026-12-07T15:59:00Z")), Availability::Open);
        assert_eq!(
            hours.at(utc("2026-12-07T16:00:00Z")),
            Availability::Closed { opens_at: Some(utc("2026-12-08T08:00:00Z")) }
        );
        assert_eq!(
            hours.at(utc("2026-12-07T07:59:00Z")),
            Availability::Closed { opens_at: Some(utc("2026-12-07T08:00:00Z")) }
        );
        // Friday evening: Monday morning is next.
        assert_eq!(
            hours.at(utc("2026-12-11T18:00:00Z")),
            Availability::Closed { opens_at: Some(utc("2026-12-14T08:00:00Z")) }
        );
        // In summer Berlin is UTC+2.
        assert_eq!(hours.at(utc("2026-07-06T07:30:00Z")), Availability::Open);
        assert!(matches!(hours.at(utc("2026-07-06T15:30:00Z")), Availability::Closed { .. }));
    }

    #[test]
    fn holidays_close_the_whole_day_and_move_the_opening() {
        let mut body = weekdays_nine_to_five("America/New_York");
        body.holidays = vec!["2026-12-25".parse().expect("date"), "2026-12-28".parse().expect("date")];
        let hours = BusinessHours::parse(&body).expect("valid");
        // Christmas Day, a Friday, at noon in New York (UTC-5).
        assert_eq!(
            hours.at(utc("2026-12-25T17:00:00Z")),
            Availability::Closed { opens_at: Some(utc("2026-12-29T14:00:00Z")) }
        );
        assert_eq!(hours.at(utc("2026-12-24T17:00:00Z")), Availability::Open);
    }

    #[test]
    fn several_ranges_a_day_and_the_end_of_the_day() {
        let body = HoursBody {
            time_zone: "UTC".to_owned(),
            weekly: Weekly {
                saturday: vec![range("18:00", "24:00"), range("08:00", "12:00"), range("12:00", "13:00")],
                sunday: vec![range("00:00", "02:00")],
                ..Weekly::default()
            },
            holidays: Vec::new(),
        };
        let hours = BusinessHours::parse(&body).expect("valid");
        // Saturday 12 December 2026.
        assert_eq!(hours.at(utc("2026-12-12T12:30:00Z")), Availability::Open);
        assert_eq!(
            hours.at(utc("2026-12-12T14:00:00Z")),
            Availability::Closed { opens_at: Some(utc("2026-12-12T18:00:00Z")) }
        );
        assert_eq!(hours.at(utc("2026-12-12T23:59:00Z")), Availability::Open);
        assert_eq!(hours.at(utc("2026-12-13T01:00:00Z")), Availability::Open);
    }

    #[test]
    fn never_open_has_no_opening_time() {
        let body = HoursBody { time_zone: "UTC".to_owned(), weekly: Weekly::default(), holidays: Vec::new() };
        let hours = BusinessHours::parse(&body).expect("valid");
        assert_eq!(hours.at(utc("2026-12-12T12:00:00Z")), Availability::Closed { opens_at: None });
    }

    #[test]
    fn an_opening_that_daylight_saving_skips_is_the_first_minute_after() {
        let body = HoursBody {
            time_zone: "Europe/Berlin".to_owned(),
            // 29 March 2026 is a Sunday: 02:00 becomes 03:00.
            weekly: Weekly { sunday: vec![range("02:30", "05:00")], ..Weekly::default() },
            holidays: Vec::new(),
        };
        let hours = BusinessHours::parse(&body).expect("valid");
        match hours.at(utc("2026-03-28T12:00:00Z")) {
            Availability::Closed { opens_at: Some(at) } => assert_eq!(at, utc("2026-03-29T01:30:00Z")),
            other => panic!("expected an opening, got {other:?}"),
        }
    }

    #[test]
    fn bad_hours_are_refused_with_a_code() {
        let mut body = weekdays_nine_to_five("Mars/Olympus_Mons");
        assert_eq!(code(&body), "invalid_time_zone");
        body.time_zone = "Europe/Berlin".to_owned();
        assert_eq!(code(&body), "ok");
        for (open, close) in [
            ("17:00", "09:00"),
            ("09:00", "09:00"),
            ("9:00", "17:00"),
            ("24:00", "24:00"),
            ("09:00", "24:30"),
            ("09:60", "10:00"),
            ("", ""),
        ] {
            body.weekly.monday = vec![range(open, close)];
            assert_eq!(code(&body), "invalid_business_hours", "{open}–{close}");
        }
        body.weekly.monday = vec![range("09:00", "12:00"), range("11:00", "13:00")];
        assert_eq!(code(&body), "invalid_business_hours");
        body.weekly.monday = vec![range("09:00", "17:00"); MAX_RANGES_PER_DAY + 1];
        assert_eq!(code(&body), "invalid_business_hours");
        body.weekly.monday = vec![range("00:00", "24:00")];
        assert_eq!(code(&body), "ok");
        body.holidays = vec![NaiveDate::from_ymd_opt(-40, 1, 1).expect("a date")];
        assert_eq!(code(&body), "invalid_business_hours");
    }
}
