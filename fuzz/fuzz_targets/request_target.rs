//! The request line's target as hyper hands it over: parsed as a URI, its path matched to
//! a route and its query decoded, exactly as `http::server::handle` does before dispatch.
//! Property: a matched API route's template has as many segments as the path.
#![no_main]

use daedalus::http::query;
use daedalus::http::route::Route;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = http::Uri::try_from(data) else {
        return;
    };
    let path = uri.path();
    if let Some(route) = Route::parse(path) {
        let template = route.template();
        assert!(
            route.allowed().len() > 0,
            "{path}: a route answers some method"
        );
        if template.starts_with('/') {
            assert_eq!(
                template.split('/').count(),
                path.split('/').count(),
                "{path} matched {template}"
            );
        }
    }
    let _ = query::parse(uri.query());
});
