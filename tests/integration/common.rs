//! Shared test harness: one throwaway PostgreSQL cluster for the whole suite (started with the
//! machine's `initdb`/`pg_ctl`) holding a migrated template database that each test clones
//! (`CREATE DATABASE … TEMPLATE`) and drops again (`WITH (FORCE)`); clusters of their own for
//! the tests that stop the server; the app started in-process on port 0, worker processes
//! started from the real binary, and image fixtures.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use image_processor::app::{self, Running};
use image_processor::config::{Config, Role};
use image_processor::db::{self, local::LocalPostgres, migrate};
use tokio::sync::OnceCell;

/// A throwaway cluster with a migrated template database. The server is stopped and its files
/// removed once this test process is gone, however it ended (a watchdog process sees to it).
pub struct Cluster {
    pub pg: LocalPostgres,
}

static SHARED: OnceCell<Cluster> = OnceCell::const_new();

const TEMPLATE: &str = "image_processor_template";

/// The cluster every test shares (started once). A test that stops or restarts the server
/// must use [`Cluster::start`] instead: the others would feel it.
pub async fn cluster() -> &'static Cluster {
    SHARED.get_or_init(Cluster::start).await
}

impl Cluster {
    /// Starts a cluster of its own and migrates its template database.
    pub async fn start() -> Cluster {
        let dir = tempdir_for_postgres();
        let data = dir.join("pg");
        let pg = tokio::task::spawn_blocking(move || LocalPostgres::start(&data))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("starting the test PostgreSQL failed: {e:#}"));
        stop_cluster_when_we_exit(&pg, &dir);
        let admin = db::connect(&pg.url()).await.expect("connect to the test cluster");
        admin
            .batch_execute(&format!("create database {TEMPLATE}"))
            .await
            .expect("create template");
        let mut client = db::connect(&pg.url_for(TEMPLATE))
            .await
            .expect("connect to template");
        migrate::run(&mut client).await.expect("migrate the template");
        // A template cannot be cloned while anyone is connected to it.
        drop(client);
        Cluster { pg }
    }

    /// A fresh database cloned from this cluster's migrated template.
    pub async fn fresh_database(&self) -> TestDb {
        self.database(Some(TEMPLATE)).await
    }

    /// A fresh database with no schema at all (for the migration tests).
    pub async fn empty_database(&self) -> TestDb {
        self.database(None).await
    }

    async fn database(&self, template: Option<&str>) -> TestDb {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let create = match template {
            Some(template) => format!("create database {name} template {template}"),
            None => format!("create database {name}"),
        };
        let admin = db::connect(&self.pg.url()).await.expect("connect");
        admin
            .batch_execute(&create)
            .await
            .unwrap_or_else(|e| panic!("{create}: {e}"));
        TestDb {
            url: self.pg.url_for(&name),
            admin_url: self.pg.url(),
            name,
        }
    }
}

impl Drop for Cluster {
    /// Only a cluster of a test's own is ever dropped (the shared one lives in a static): it is
    /// stopped at the end of that test rather than when the process exits.
    fn drop(&mut self) {
        if let Err(e) = self.pg.stop() {
            eprintln!("stopping the test cluster: {e:#}");
        }
    }
}

/// One test's database; dropped `WITH (FORCE)` when the test is done with it, so a suite of
/// tests does not leave a cluster full of copies behind.
pub struct TestDb {
    /// Connection string for this database.
    pub url: String,
    /// Connection string for the cluster's `postgres` database, to drop this one from.
    admin_url: String,
    name: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which must not block on a future: a thread with
        // a runtime of its own does the asynchronous work.
        let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let admin = db::connect(&admin_url).await?;
                admin
                    .batch_execute(&format!("drop database if exists {name} with (force)"))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        // Best effort: the cluster goes away with the process anyway (and a test that stopped
        // its server has nothing to drop from).
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test database {}: {e:#}", self.name),
            Err(_) => eprintln!("dropping test database {}: the thread panicked", self.name),
        }
    }
}

/// A temp directory PostgreSQL's unprivileged user can reach (the default one is root-only).
fn tempdir_for_postgres() -> PathBuf {
    let base = std::env::var_os("TEST_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "image-processor-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("create test dir");
    set_mode(&dir, 0o755);
    dir
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Statics are never dropped, so a watchdog process stops the cluster (and removes its files)
/// once this test process is gone, however it ended.
// The watchdog must outlive this process, so it is deliberately never waited for.
#[allow(clippy::zombie_processes)]
fn stop_cluster_when_we_exit(pg: &LocalPostgres, dir: &std::path::Path) {
    assert!(
        dir.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("image-processor-test-")),
        "refusing to schedule removal of {}",
        dir.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         kill -QUIT $(head -n1 '{data}/postmaster.pid') 2>/dev/null; sleep 1; rm -rf '{dir}'",
        pid = std::process::id(),
        data = pg.data_dir().display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the cluster watchdog");
}

/// A fresh database on the shared cluster, cloned from the migrated template.
pub async fn fresh_database() -> TestDb {
    cluster().await.fresh_database().await
}

/// Configuration for tests: port 0, small and quick.
pub fn test_config(extra: &[(&str, &str)]) -> Config {
    let defaults = [
        ("listen-addr", "127.0.0.1:0"),
        ("sweep-secs", "1"),
        ("db-pool-size", "8"),
        // Well inside STOP_WITHIN, so `TestApp::stop` can insist on a clean, bounded stop.
        ("shutdown-grace-secs", "5"),
    ];
    let mut args: Vec<String> = vec!["image-processor".into()];
    let overridden = |k: &str| extra.iter().any(|(e, _)| *e == k);
    for (k, v) in defaults.iter().filter(|(k, _)| !overridden(k)).chain(extra) {
        args.push(format!("--{k}"));
        args.push((*v).to_owned());
    }
    Config::from_args(args).expect("test config")
}

/// How long `TestApp::stop` gives the app: the shutdown grace of `test_config` and then some.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// The app running in this process against a fresh database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db_url: String,
    pub http: reqwest::Client,
    running: Option<Running>,
    /// The database, when this app created it; dropped after the app is cancelled.
    owned_db: Option<TestDb>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a bodiless request to `path` and returns the answer, whatever its status.
    pub async fn call(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method.clone(), self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path).await
    }

    /// `GET path` and its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path)
            .await
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        db::connect(&self.db_url)
            .await
            .expect("connect to the test database")
    }

    /// Stops the app gracefully; fails the test unless every part of it finished, without an
    /// error, within `STOP_WITHIN`.
    pub async fn stop(mut self) {
        let running = self.running.take().expect("the app is running until stopped");
        running.cancel.cancel();
        match tokio::time::timeout(STOP_WITHIN, running.done).await {
            Err(_) => panic!("the app was still running {STOP_WITHIN:?} after it was asked to stop"),
            Ok(Err(join)) => panic!("the app's task did not finish cleanly: {join}"),
            Ok(Ok(Err(e))) => panic!("the app stopped with an error: {e:#}"),
            Ok(Ok(Ok(()))) => {}
        }
    }

    /// Polls the status until it is no longer pending/processing.
    pub async fn wait_done(&self, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v: serde_json::Value = self
                .http
                .get(self.url(&format!("/api/images/{id}?wait=10")))
                .send()
                .await
                .expect("status request")
                .json()
                .await
                .expect("status json");
            let status = v["status"].as_str().unwrap_or("");
            if matches!(status, "completed" | "failed" | "cancelled") {
                return v;
            }
            assert!(Instant::now() < deadline, "image {id} still {status} after 60 s");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.cancel.cancel();
        }
    }
}

/// Starts `role` in-process against a fresh database.
pub async fn spawn_app_with(role: Role, extra: &[(&str, &str)]) -> TestApp {
    let db = fresh_database().await;
    let mut app = spawn_app_on(role, db.url.clone(), extra).await;
    app.owned_db = Some(db);
    app
}

/// Starts `role` in-process against a database someone else owns (e.g. another `TestApp`'s).
pub async fn spawn_app_on(role: Role, db_url: String, extra: &[(&str, &str)]) -> TestApp {
    let running = app::spawn(role, test_config(extra), db_url.clone())
        .await
        .expect("start the app");
    let addr = running
        .addr
        .unwrap_or_else(|| "127.0.0.1:9".parse().expect("addr"));
    TestApp {
        addr,
        db_url,
        http: reqwest::Client::new(),
        running: Some(running),
        owned_db: None,
    }
}

/// API + worker in this process.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Role::Run, &[]).await
}

/// A worker (or other role) as a separate OS process of the real binary; killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(role: &str, db_url: &str, envs: &[(&str, &str)]) -> Proc {
        let log = std::env::temp_dir().join(format!(
            "image-processor-{role}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_image-processor"));
        cmd.arg(role)
            .env("DATABASE_URL", db_url)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("SWEEP_SECS", "1")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,image_processor=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().expect("spawn image-processor"),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (SIGTERM for graceful shutdown, SIGKILL to simulate a crash).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, sig);
    }

    /// Waits up to `timeout` for exit; returns the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A photo-like RGB image: smooth gradients plus detail, so codecs behave as on real photos.
pub fn photo(width: u32, height: u32) -> DynamicImage {
    let img = RgbImage::from_fn(width, height, |x, y| {
        let r = (x * 255 / width.max(1)) as u8;
        let g = (y * 255 / height.max(1)) as u8;
        let b = (((x / 7) ^ (y / 5)) % 256) as u8;
        Rgb([r, g, b])
    });
    DynamicImage::ImageRgb8(img)
}

pub fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode fixture");
    out.into_inner()
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(&photo(width, height), ImageFormat::Jpeg)
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(&photo(width, height), ImageFormat::Png)
}

/// Waits until `f` is true or `timeout` passes; returns whether it became true.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Status counts straight from the table.
pub async fn counts(client: &tokio_postgres::Client) -> std::collections::HashMap<String, i64> {
    client
        .query(
            "select status, count(*) from processed_images group by status",
            &[],
        )
        .await
        .expect("count")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// How many times each image was logged `completed` across `workers`, once at least `expected`
/// distinct images are (or 10 s have passed). A worker logs `completed` just after its commit
/// and status notification, so on a loaded machine the last lines trail the table a moment.
pub async fn logged_completions(
    workers: &[Proc],
    expected: usize,
) -> std::collections::HashMap<String, usize> {
    let tally = || {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for w in workers {
            for id in completed_ids(&w.log_text()) {
                *seen.entry(id).or_default() += 1;
            }
        }
        seen
    };
    eventually(Duration::from_secs(10), || async { tally().len() >= expected }).await;
    tally()
}

/// Image ids a worker process logged as completed, from its JSON log.
pub fn completed_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "completed")
        .filter_map(|v| v["span"]["image_id"].as_str().map(str::to_owned))
        .collect()
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Inserts `n` copies of `image` by plain SQL (the SQL job source), in one statement.
pub async fn insert_jobs_of(client: &tokio_postgres::Client, image: &[u8], n: i32) {
    client
        .execute(
            "insert into processed_images (original_data) select $1 from generate_series(1, $2::int)",
            &[&image, &n],
        )
        .await
        .expect("insert jobs");
}

/// Inserts `n` small PNG jobs (32×24) by plain SQL.
pub async fn insert_jobs(client: &tokio_postgres::Client, n: i32) {
    insert_jobs_of(client, &png(32, 24), n).await;
}

/// Waits until exactly `n` rows are `processing`, or `timeout` passes; returns whether they are.
pub async fn wait_processing(client: &tokio_postgres::Client, n: i64, timeout: Duration) -> bool {
    eventually(timeout, || async {
        counts(client).await.get("processing").copied() == Some(n)
    })
    .await
}

/// Waits until exactly `n` rows are `completed`, or `timeout` passes; returns whether they are.
pub async fn wait_completed(client: &tokio_postgres::Client, n: i64, timeout: Duration) -> bool {
    eventually(timeout, || async {
        counts(client).await.get("completed").copied().unwrap_or(0) == n
    })
    .await
}

/// The value of one series (name and labels exactly as exposed) in a `/metrics` text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The SPEC's error body: `{"error": {"code": <code>, "message": <a sentence>}}`.
pub fn assert_error(context: &str, body: &serde_json::Value, code: &str) {
    assert_eq!(
        body["error"]["code"], code,
        "{context}: unexpected error body: {body}"
    );
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{context}: no message: {body}"
    );
}

/// Uploads one PNG as a multipart `file` part with the given text fields; the raw answer.
pub async fn upload_png(app: &TestApp, png: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png)
            .file_name("upload.png")
            .mime_str("image/png")
            .expect("mime"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    app.http
        .post(app.url("/api/images"))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// Makes every INSERT of a row with this `filename` fail (a trigger raises): the database
/// refusing an upload, for the tests of what is left after it.
pub async fn refuse_uploads_named(db: &tokio_postgres::Client, filename: &str) {
    db.batch_execute(&format!(
        "create function refuse_upload() returns trigger language plpgsql as $$
         begin
             if new.filename = '{filename}' then raise exception 'refused by a test trigger'; end if;
             return new;
         end $$;
         create trigger refuse_upload before insert on processed_images
             for each row execute function refuse_upload();"
    ))
    .await
    .expect("install the refusing trigger");
}
