//! Numbered migrations from `sql/`, embedded at compile time, applied under an advisory lock so
//! that replicas starting at the same moment apply each exactly once.

use anyhow::Context;

/// `(version, name, sql)`, in order. Add a file to `sql/` and a line here. Versions increase but
/// may leave gaps for work developed on another branch; a version missing from a database is
/// applied whenever it appears, even below the highest one applied.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "processed_images",
        include_str!("../../sql/0001_processed_images.sql"),
    ),
    (
        2,
        "cheaper_triggers",
        include_str!("../../sql/0002_cheaper_triggers.sql"),
    ),
    (
        3,
        "notify_after_commit",
        include_str!("../../sql/0003_notify_after_commit.sql"),
    ),
    (4, "error_code", include_str!("../../sql/0004_error_code.sql")),
    (5, "claim_seq", include_str!("../../sql/0005_claim_seq.sql")),
    (6, "lost_leases", include_str!("../../sql/0006_lost_leases.sql")),
    (
        7,
        "status_notify_after_commit",
        include_str!("../../sql/0007_status_notify_after_commit.sql"),
    ),
    (8, "table_health", include_str!("../../sql/0008_table_health.sql")),
    (
        9,
        "priority_not_before",
        include_str!("../../sql/0009_priority_not_before.sql"),
    ),
    (10, "claim_index", include_str!("../../sql/0010_claim_index.sql")),
    (
        11,
        "cancelled_and_history",
        include_str!("../../sql/0011_cancelled_and_history.sql"),
    ),
    (
        12,
        "validate_status",
        include_str!("../../sql/0012_validate_status.sql"),
    ),
    (13, "image_facts", include_str!("../../sql/0013_image_facts.sql")),
    (14, "webhooks", include_str!("../../sql/0014_webhooks.sql")),
    (
        15,
        "presets_variants",
        include_str!("../../sql/0015_presets_variants.sql"),
    ),
];

/// Arbitrary constant shared by every replica: the advisory lock key for migrations.
const MIGRATION_LOCK_KEY: i64 = 0x1a6e_9c0d_5e55_0001;

pub fn latest_version() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Applies every migration not yet applied. Returns how many were applied.
pub async fn run(client: &mut tokio_postgres::Client) -> anyhow::Result<usize> {
    // A session lock (not a transaction lock) so the bookkeeping table can be created under it.
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("taking the migration lock")?;
    let result = apply_pending(client).await;
    let unlock = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    let applied = result?;
    unlock.context("releasing the migration lock")?;
    Ok(applied)
}

async fn apply_pending(client: &mut tokio_postgres::Client) -> anyhow::Result<usize> {
    client
        .batch_execute(
            "create table if not exists schema_migrations (
                version integer primary key,
                name text not null,
                applied_at timestamptz not null default now())",
        )
        .await
        .context("creating schema_migrations")?;
    // The versions present, not only the highest: with gaps in the list (a branch's numbers
    // reserved for another), a database migrated before the gap was filled still gets it.
    let present: Vec<i32> = client
        .query("select version from schema_migrations", &[])
        .await
        .context("reading the schema version")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| !present.contains(&m.0)) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {version} ({name})"))?;
        tx.execute(
            "insert into schema_migrations (version, name) values ($1, $2)",
            &[version, name],
        )
        .await?;
        tx.commit()
            .await
            .with_context(|| format!("committing migration {version}"))?;
        tracing::info!(version, name, "applied migration");
        applied += 1;
    }
    Ok(applied)
}

/// The schema version the database is at (0 when never migrated).
pub async fn current_version(client: &impl tokio_postgres::GenericClient) -> Result<i32, super::DbError> {
    let exists: bool = client
        .query_one("select to_regclass('schema_migrations') is not null", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one("select coalesce(max(version), 0) from schema_migrations", &[])
        .await?
        .get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `sql/` but not to [`MIGRATIONS`] (or the other way round) would never
    /// be applied; the list must be exactly the directory, in order, each file's own text.
    #[test]
    fn the_embedded_list_is_exactly_the_sql_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("read sql/")
            .map(|e| e.expect("sql/ entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .map(|p| {
                let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("read migration"))
            })
            .collect();
        files.sort();
        let embedded: Vec<(String, String)> = MIGRATIONS
            .iter()
            .map(|(v, name, sql)| (format!("{v:04}_{name}"), (*sql).to_owned()))
            .collect();
        assert_eq!(
            embedded.iter().map(|e| &e.0).collect::<Vec<_>>(),
            files.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "sql/ and MIGRATIONS list different files"
        );
        assert_eq!(embedded, files, "an embedded migration differs from its file");
        // Gaps are allowed (numbers reserved for another branch), going back is not.
        assert_eq!(MIGRATIONS.first().map(|m| m.0), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "versions must increase: {} then {}",
                pair[0].0,
                pair[1].0
            );
        }
    }
}
