//! Presets: named pipelines in `image_presets` (`sql/0015_presets_variants.sql`), written by
//! `PUT /api/presets/{name}` or by plain SQL. The HTTP layer checks names and pipelines; the
//! table's CHECK holds the name rule for SQL writers too.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::DbError;
use crate::presets::PresetName;

/// The columns every statement below returns, in [`PresetRecord::from_row`]'s order.
macro_rules! preset_columns {
    () => {
        "name, pipeline, created_at, updated_at"
    };
}

/// One row of `image_presets`, as stored (a pipeline a SQL writer stored is not checked here).
#[derive(Debug, Clone, PartialEq)]
pub struct PresetRecord {
    pub name: String,
    pub pipeline: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PresetRecord {
    fn from_row(row: &Row) -> Result<PresetRecord, tokio_postgres::Error> {
        Ok(PresetRecord {
            name: row.try_get(0)?,
            pipeline: row.try_get(1)?,
            created_at: row.try_get(2)?,
            updated_at: row.try_get(3)?,
        })
    }
}

/// `xmax = 0` on the returned row: no earlier version was updated, so the row is new.
pub const UPSERT_PRESET: &str = concat!(
    "insert into image_presets (name, pipeline) values ($1, $2) \
     on conflict (name) do update set pipeline = excluded.pipeline, updated_at = now() \
     returning ",
    preset_columns!(),
    ", (xmax = 0) as created"
);

/// Creates or replaces the preset `name`; `true` with the row when it was created.
pub async fn upsert_preset(
    db: &impl GenericClient,
    name: &PresetName,
    pipeline: &serde_json::Value,
) -> Result<(PresetRecord, bool), DbError> {
    let stmt = db.prepare_cached(UPSERT_PRESET).await?;
    let row = db.query_one(&stmt, &[&name.as_str(), pipeline]).await?;
    let record = PresetRecord::from_row(&row)?;
    let created: bool = row.try_get(4)?;
    Ok((record, created))
}

pub const GET_PRESET: &str = concat!(
    "select ",
    preset_columns!(),
    " from image_presets where name = $1"
);

pub async fn get_preset(db: &impl GenericClient, name: &PresetName) -> Result<Option<PresetRecord>, DbError> {
    let stmt = db.prepare_cached(GET_PRESET).await?;
    let row = db.query_opt(&stmt, &[&name.as_str()]).await?;
    row.map(|r| PresetRecord::from_row(&r))
        .transpose()
        .map_err(DbError::from)
}

/// Byte order (`collate "C"`), so the list reads the same whatever the database's locale.
pub const LIST_PRESETS: &str = concat!(
    "select ",
    preset_columns!(),
    " from image_presets order by name collate \"C\""
);

/// Every preset, by name. (Presets are a handful of named configurations, not data: no paging.)
pub async fn list_presets(db: &impl GenericClient) -> Result<Vec<PresetRecord>, DbError> {
    let stmt = db.prepare_cached(LIST_PRESETS).await?;
    let rows = db.query(&stmt, &[]).await?;
    rows.iter()
        .map(PresetRecord::from_row)
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}

pub const DELETE_PRESET: &str = "delete from image_presets where name = $1";

/// Deletes a preset; `false` when there was none. Its variants stay (sql/0015's trigger fails
/// the unfinished ones).
pub async fn delete_preset(db: &impl GenericClient, name: &PresetName) -> Result<bool, DbError> {
    let stmt = db.prepare_cached(DELETE_PRESET).await?;
    Ok(db.execute(&stmt, &[&name.as_str()]).await? == 1)
}
