//! Variants: one image processed with a preset, each a job on the same queue (SPEC "Variants,
//! presets and signed delivery"). The SQL path, the worker's rules (fence, cascade of retry,
//! cancel and delete, a preset deleted under queued variants), and the HTTP routes.

use std::time::Duration;

use image_processor::config::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::*;

async fn put_preset_sql(client: &tokio_postgres::Client, name: &str, pipeline: Value) {
    client
        .execute(
            "insert into image_presets (name, pipeline) values ($1, $2)
             on conflict (name) do update set pipeline = excluded.pipeline",
            &[&name, &pipeline],
        )
        .await
        .expect("insert preset");
}

async fn insert_image(client: &tokio_postgres::Client, bytes: &[u8]) -> Uuid {
    client
        .query_one(
            "insert into processed_images (original_data, filename) values ($1, 'v.png') returning id",
            &[&bytes],
        )
        .await
        .expect("insert image")
        .get(0)
}

/// `(status, width, height, content_type, error_code)` of a variant row.
type Row = (String, Option<i32>, Option<i32>, Option<String>, Option<String>);

async fn variant_row(client: &tokio_postgres::Client, id: Uuid, preset: &str) -> Option<Row> {
    client
        .query_opt(
            "select status, width, height, content_type, error_code from image_variants
             where image_id = $1 and preset = $2 and format = ''",
            &[&id, &preset],
        )
        .await
        .expect("variant row")
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
}

async fn wait_variant(client: &tokio_postgres::Client, id: Uuid, preset: &str, status: &str) -> Row {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = variant_row(client, id, preset).await;
        if let Some(row) = row.filter(|r| r.0 == status) {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "variant {preset} of {id} never became {status}: {:?}",
            variant_row(client, id, preset).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sql_insert_of_a_variant_is_a_job_the_worker_makes() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(
        &client,
        "thumb",
        json!({"width": 40, "height": 40, "fit": "cover", "format": "webp"}),
    )
    .await;
    put_preset_sql(&client, "auto", json!({"width": 50, "format": "auto"})).await;
    let id = insert_image(&client, &png(200, 100)).await;
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb'), ($1, 'auto'), ($1, 'ghost')",
            &[&id],
        )
        .await
        .expect("insert variants");

    let thumb = wait_variant(&client, id, "thumb", "completed").await;
    assert_eq!((thumb.1, thumb.2), (Some(40), Some(40)), "{thumb:?}");
    assert_eq!(thumb.3.as_deref(), Some("image/webp"));
    // auto with no Accept (a SQL insert): the universal format; an opaque PNG becomes JPEG.
    let auto = wait_variant(&client, id, "auto", "completed").await;
    assert_eq!((auto.1, auto.2), (Some(50), Some(25)), "{auto:?}");
    assert_eq!(auto.3.as_deref(), Some("image/jpeg"));
    let ghost = wait_variant(&client, id, "ghost", "failed").await;
    assert_eq!(ghost.4.as_deref(), Some("unknown_preset"));
    // The image itself completed too, with its thumbnail; the variants made none.
    let image = app.wait_done(&id.to_string()).await;
    assert_eq!(image["status"], "completed", "{image}");
    app.stop().await;
}

#[tokio::test]
async fn retry_cancel_and_delete_of_an_image_cover_its_variants_and_a_deleted_preset_fails_its_queue() {
    // API only: nothing is processed, so every state is the one the statements left.
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    put_preset_sql(&client, "small", json!({"width": 10})).await;
    put_preset_sql(&client, "gone", json!({"width": 20})).await;
    let id = insert_image(&client, &png(30, 30)).await;
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'small'), ($1, 'gone')",
            &[&id],
        )
        .await
        .expect("insert variants");

    client
        .execute("delete from image_presets where name = 'gone'", &[])
        .await
        .expect("delete preset");
    let gone = variant_row(&client, id, "gone").await.expect("row");
    assert_eq!(
        (gone.0.as_str(), gone.4.as_deref()),
        ("failed", Some("preset_deleted")),
        "{gone:?}"
    );

    // Cancel the image: its unfinished variant is cancelled with it.
    let res = app
        .call(reqwest::Method::POST, &format!("/api/images/{id}/cancel"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let small = variant_row(&client, id, "small").await.expect("row");
    assert_eq!(small.0, "cancelled", "{small:?}");

    // Retry the image: every finished variant is queued again.
    let res = app
        .call(reqwest::Method::POST, &format!("/api/images/{id}/retry"))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    for preset in ["small", "gone"] {
        let row = variant_row(&client, id, preset).await.expect("row");
        assert_eq!(row.0, "pending", "{preset}: {row:?}");
    }

    // Delete: the variants go with the image.
    let res = app
        .call(reqwest::Method::DELETE, &format!("/api/images/{id}"))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let left: i64 = client
        .query_one("select count(*) from image_variants where image_id = $1", &[&id])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
    app.stop().await;
}
