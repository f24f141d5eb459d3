//! The agent dashboard, the admin page and the partner page, at friendly paths.

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

/// The partner page: a partner organisation's members follow and answer the chats they are invited into.
#[utoipa::path(tag = "pages", responses((status = 200, description = "HTML page", content_type = "text/html")))]
#[get("/partner")]
pub async fn partner(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    page(&req, &state, "partner.html").await
}
