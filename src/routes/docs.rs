//! The OpenAPI document and a page to read it.

use actix_web::{get, http::header, web, HttpResponse};

/// The OpenAPI document as served, built once at start-up.
pub struct ApiDocument(pub String);

/// This API's OpenAPI 3 document.
#[utoipa::path(tag = "operations", responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
#[get("/api/openapi.json")]
pub async fn openapi_json(document: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document.0.clone())
}

/// A readable page of the API, drawn from the document.
#[utoipa::path(tag = "operations", responses((status = 302, description = "Moved to the docs page")))]
#[get("/api/docs")]
pub async fn docs() -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/docs/")).finish()
}
