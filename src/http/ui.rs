//! The dashboard: the plain files under `web/`, compiled into the binary and
//! served as they are (no build step). `/` and every `/ui/<page>` answer the
//! same `index.html`; its module reads the path and the query string, which
//! hold all of a page's state. Assets are served from `/ui/assets/`, gzipped
//! once on first request when the client accepts it, with an ETag so that a
//! reload revalidates instead of downloading again.

use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

/// The pages `index.html` knows how to draw, besides the overview at `/`.
pub const PAGES: [&str; 4] = ["metrics", "dashboards", "logs", "alerts"];

macro_rules! web {
    ($($path:literal),* $(,)?) => {
        [$(($path, include_bytes!(concat!("../../web/", $path)) as &[u8])),*]
    };
}

/// Every file under `web/` that the dashboard loads. `tests/it/ui.rs` checks
/// that this list and the folder agree.
pub const FILES: [(&str, &[u8]); 16] = web![
    "index.html",
    "app.css",
    "js/app.js",
    "js/api.js",
    "js/dom.js",
    "js/time.js",
    "js/chart.js",
    "js/overview.js",
    "js/metrics.js",
    "js/dashboards.js",
    "js/logs.js",
    "js/alerts.js",
    "js/complete.js",
    "vendor/uPlot.iife.min.js",
    "vendor/uPlot.min.css",
    "vendor/uPlot.LICENSE",
];

struct Asset {
    body: &'static [u8],
    gzip: OnceLock<Vec<u8>>,
    etag: HeaderValue,
    mime: &'static str,
}

fn assets() -> &'static [(&'static str, Asset)] {
    static ASSETS: OnceLock<Vec<(&'static str, Asset)>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|&(path, body)| {
                let hash = foldhash::fast::FixedState::with_seed(0x1057a);
                let digest = std::hash::BuildHasher::hash_one(&hash, body);
                let etag = HeaderValue::from_str(&format!("\"{digest:016x}\"")).expect("hex is a valid header");
                (path, Asset { body, gzip: OnceLock::new(), etag, mime: mime(path) })
            })
            .collect()
    })
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/ui/{page}", get(page)).route("/ui/assets/{*file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn page(Path(page): Path<String>, headers: HeaderMap) -> Response {
    if !PAGES.contains(&page.as_str()) {
        return ApiError::NotFound(format!("no dashboard page {page:?}; pages: {}", PAGES.join(", "))).into_response();
    }
    serve("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((_, asset)) = assets().iter().find(|(p, _)| *p == path) else {
        return ApiError::NotFound(format!("no dashboard file {path:?}")).into_response();
    };
    let mut response = if headers.get(header::IF_NONE_MATCH) == Some(&asset.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let body = asset.gzip.get_or_init(|| gzip(asset.body));
        let mut response = body.clone().into_response();
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(header::ETAG, asset.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| matches!(p.trim().strip_prefix("q=").map(str::trim), Some("0" | "0.0" | "0.00" | "0.000")));
        name.eq_ignore_ascii_case("gzip") && !refused
    })
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::best());
    encoder.write_all(body).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip, deflate"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn gzipped_assets_unpack_to_the_file() {
        let (_, body) = FILES.iter().find(|(p, _)| *p == "js/app.js").unwrap();
        let packed = gzip(body);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut out).unwrap();
        assert_eq!(&out[..], *body);
        assert!(packed.len() < body.len());
    }

    #[test]
    fn every_page_script_and_style_has_its_type() {
        for (path, _) in FILES {
            assert!(!path.starts_with('/') && !path.contains(".."), "{path}");
            if !path.ends_with(".LICENSE") {
                assert_ne!(mime(path), "text/plain; charset=utf-8", "{path} would be served as plain text");
            }
        }
    }
}
