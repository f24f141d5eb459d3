//! Reports for a date range: chats, handoffs, first-response and resolution
//! times and customer satisfaction, overall and per agent; as JSON or CSV.

use actix_web::{get, http::header, web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::extractors::Admin;
use crate::db::queries::stats::ReportRow;
use crate::db::{self, queries};
use crate::error::{AppError, ErrorBody};
use crate::startup::AppState;

/// The longest range one report covers.
const MAX_DAYS: i64 = 366;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The first day (YYYY-MM-DD, UTC); default: six days before `to`.
    from: Option<NaiveDate>,
    /// The last day, included (YYYY-MM-DD, UTC); default: today.
    to: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct Seconds {
    p50: Option<f64>,
    p90: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct Csat {
    /// Mean rating, 1 to 5; none without ratings.
    average: Option<f64>,
    count: i64,
    /// How many chats got each rating, keyed "1" to "5".
    #[schema(value_type = Object)]
    distribution: std::collections::BTreeMap<String, i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    chats: i64,
    handed_off: i64,
    /// Share of chats handed to a person.
    handoff_rate: f64,
    first_response_seconds: Seconds,
    /// From the start of a resolved chat to its end.
    resolution_seconds: Seconds,
    csat: Csat,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentFigures {
    agent_id: Uuid,
    name: String,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamFigures {
    team_id: Uuid,
    name: String,
    #[serde(flatten)]
    figures: Figures,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    from: NaiveDate,
    to: NaiveDate,
    overall: Figures,
    /// By the agent who had each chat last; chats no person had are only in `overall`.
    by_agent: Vec<AgentFigures>,
    /// By the team each chat was routed to; chats for no team are only in `overall`.
    by_team: Vec<TeamFigures>,
}

/// A name as a spreadsheet shows it, not runs it: a cell that starts like a
/// formula is quoted.
fn as_cell(name: &str) -> String {
    if name.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{name}")
    } else {
        name.to_owned()
    }
}

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| (ms / 10.0).round() / 100.0)
}

impl From<&ReportRow> for Figures {
    fn from(row: &ReportRow) -> Self {
        let count: i64 = row.csat_counts.iter().sum();
        Figures {
            chats: row.chats,
            handed_off: row.handed_off,
            handoff_rate: if row.chats == 0 { 0.0 } else { row.handed_off as f64 / row.chats as f64 },
            first_response_seconds: Seconds {
                p50: seconds(row.first_response_p50_ms),
                p90: seconds(row.first_response_p90_ms),
            },
            resolution_seconds: Seconds { p50: seconds(row.resolution_p50_ms), p90: seconds(row.resolution_p90_ms) },
            csat: Csat {
                average: row.csat_average.map(|average| (average * 100.0).round() / 100.0),
                count,
                distribution: row
                    .csat_counts
                    .iter()
                    .enumerate()
                    .map(|(n, count)| ((n + 1).to_string(), *count))
                    .collect(),
            },
        }
    }
}

/// The range asked for: whole days, UTC, `to` included.
fn range(query: &ReportQuery) -> Result<(NaiveDate, NaiveDate, DateTime<Utc>, DateTime<Utc>), AppError> {
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = query.from.unwrap_or(to - Duration::days(6));
    if from > to {
        return Err(AppError::validation("from must not be after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(AppError::validation(format!("a report covers at most {MAX_DAYS} days")));
    }
    let start = from.and_hms_opt(0, 0, 0).map(|at| at.and_utc());
    let end = (to + Duration::days(1)).and_hms_opt(0, 0, 0).map(|at| at.and_utc());
    match (start, end) {
        (Some(start), Some(end)) => Ok((from, to, start, end)),
        _ => Err(AppError::validation("dates out of range")),
    }
}

async fn build(state: &AppState, query: &ReportQuery) -> Result<Report, AppError> {
    let (from, to, start, end) = range(query)?;
    let rows = db::run(&state.pool, async |conn| queries::stats::report(conn, start, end).await).await?;
    let overall = rows.iter().find(|row| row.overall).map(Figures::from).unwrap_or_else(|| {
        Figures::from(&ReportRow {
            overall: true,
            by_team: false,
            team_id: None,
            team_name: None,
            agent_id: None,
            agent_name: None,
            chats: 0,
            handed_off: 0,
            first_response_p50_ms: None,
            first_response_p90_ms: None,
            resolution_p50_ms: None,
            resolution_p90_ms: None,
            csat_average: None,
            csat_counts: vec![0; 5],
        })
    });
    let by_agent = rows
        .iter()
        .filter(|row| !row.overall && !row.by_team)
        .filter_map(|row| {
            Some(AgentFigures { agent_id: row.agent_id?, name: row.agent_name.clone()?, figures: Figures::from(row) })
        })
        .collect();
    let by_team = rows
        .iter()
        .filter(|row| row.by_team)
        .filter_map(|row| {
            Some(TeamFigures { team_id: row.team_id?, name: row.team_name.clone()?, figures: Figures::from(row) })
        })
        .collect();
    Ok(Report { from, to, overall, by_agent, by_team })
}

/// A report for a date range (admins).
#[utoipa::path(
    tag = "admin",
    params(ReportQuery),
    responses((status = 200, body = Report), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/reports")]
pub async fn report(
    state: web::Data<AppState>,
    _: Admin,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(build(&state, &query).await?))
}

/// The same report as CSV: one line for the whole range, then one per agent and one per team (admins).
#[utoipa::path(
    tag = "admin",
    params(ReportQuery),
    responses((status = 200, description = "CSV with a header line", content_type = "text/csv"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/admin/reports.csv")]
pub async fn report_csv(
    state: web::Data<AppState>,
    _: Admin,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let built = build(&state, &query).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let number = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    let header = [
        "scope",
        "id",
        "name",
        "chats",
        "handed_off",
        "handoff_rate",
        "first_response_p50_s",
        "first_response_p90_s",
        "resolution_p50_s",
        "resolution_p90_s",
        "csat_average",
        "csat_count",
        "csat_1",
        "csat_2",
        "csat_3",
        "csat_4",
        "csat_5",
    ];
    let mut lines = vec![header.iter().map(|field| field.to_string()).collect::<Vec<_>>()];
    let line = |scope: &str, id: String, name: String, figures: &Figures| {
        let mut fields = vec![
            scope.to_owned(),
            id,
            as_cell(&name),
            figures.chats.to_string(),
            figures.handed_off.to_string(),
            format!("{:.4}", figures.handoff_rate),
            number(figures.first_response_seconds.p50),
            number(figures.first_response_seconds.p90),
            number(figures.resolution_seconds.p50),
            number(figures.resolution_seconds.p90),
            number(figures.csat.average),
            figures.csat.count.to_string(),
        ];
        fields.extend(figures.csat.distribution.values().map(|count| count.to_string()));
        fields
    };
    lines.push(line("overall", String::new(), String::new(), &built.overall));
    for agent in &built.by_agent {
        lines.push(line("agent", agent.agent_id.to_string(), agent.name.clone(), &agent.figures));
    }
    for team in &built.by_team {
        lines.push(line("team", team.team_id.to_string(), team.name.clone(), &team.figures));
    }
    for fields in lines {
        out.write_record(&fields).map_err(AppError::internal)?;
    }
    let body = out.into_inner().map_err(|error| AppError::internal(error.into_error()))?;
    let name = format!("switchboard-report-{}-{}.csv", built.from, built.to);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::as_cell;

    #[test]
    fn a_name_that_looks_like_a_formula_is_quoted_for_spreadsheets() {
        assert_eq!(as_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(as_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(as_cell("Alice"), "Alice");
        assert_eq!(as_cell(""), "");
    }
}
