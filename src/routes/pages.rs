//! The agent dashboard and the admin page, at friendly paths.

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::startup::AppState;

async fn page(req: &HttpRequest, state: &AppState, file: &str) -> HttpResponse {
    let path = std::path::Path::new(&state.static_dir).join(file);
    match actix_files::NamedFile::open_async(path).await {
        Ok(file) => file.into_response(req),
        Err(_) => HttpResponse::NotFound().body("page not found"),
    }
}

/// The agent dashboard.
#[utoipa::path(tag = "pages", responses((status = 200, description = "HTML page", content_type = "text/html")))]
#[get("/agent")]
pub async fn agent(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    page(&req, &state, "agent.html").await
}

/// The admin page.
#[utoipa::path(tag = "pages", responses((status = 200, description = "HTML page", content_type = "text/html")))]
#[get("/admin")]
pub async fn admin(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    page(&req, &state, "admin.html").await
}
