//! The original design's routes (`POST /upload`, `GET /status/{id}`, `GET /download/{id}`),
//! kept for existing Postman collections. Each is declared in one way: [`alias`] takes the
//! `/api` route's own `routes!(handler)` and serves the same handler at the old path, with the
//! same documented parameters and answers, tagged `legacy`.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa_axum::router::UtoipaMethodRouter;

use super::state::AppState;

/// The tag legacy routes are listed under.
const TAG: &str = "legacy";

/// Serves `route` (one handler, from `routes!`) at `legacy_path` as well, documented as an
/// alias of its `/api` path.
pub fn alias(legacy_path: &str, route: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, mut paths, method_router) = route;
    let items = std::mem::take(&mut paths.paths);
    for (api_path, mut item) in items {
        for op in operations_mut(&mut item) {
            retag(op, &api_path);
        }
        paths.paths.insert(legacy_path.to_owned(), item);
    }
    (schemas, paths, method_router)
}

fn retag(op: &mut Operation, api_path: &str) {
    op.tags = Some(vec![TAG.to_owned()]);
    // Operation ids must be unique in the document.
    op.operation_id = op.operation_id.take().map(|id| format!("legacy_{id}"));
    op.summary = Some(format!("The original design's route: the same as `{api_path}`"));
}

/// Every operation of a path item.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}
