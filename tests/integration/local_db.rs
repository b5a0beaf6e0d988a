//! The embedded-database mode: with DATABASE_URL unset the binary runs its own cluster in
//! DATA_DIR/postgres, keeps the data across restarts, and stops the cluster on exit.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use nix::sys::signal::Signal;

fn start(data_dir: &Path, port: u16) -> Proc {
    let log = data_dir.with_extension(format!("{port}.log"));
    let file = std::fs::File::create(&log).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_image-processor"))
        .env_remove("DATABASE_URL")
        .env("DATA_DIR", data_dir)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn");
    Proc { child, log }
}

async fn wait_ready(http: &reqwest::Client, base: &str, proc: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("not ready in 90 s:\n{}", proc.log_text());
}

fn cluster_running(data_dir: &Path) -> bool {
    data_dir.join("postgres/postmaster.pid").exists()
}

#[tokio::test]
async fn embedded_database_starts_keeps_data_across_restarts_and_stops_on_exit() {
    let base_dir = std::env::temp_dir().join(format!("ip-local-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&base_dir).expect("mkdir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&base_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let data_dir = base_dir.join("data");
    let _cleanup = Cleanup(base_dir.clone());
    let http = reqwest::Client::new();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = start(&data_dir, port);
    wait_ready(&http, &base, &first).await;
    assert!(cluster_running(&data_dir), "no cluster in DATA_DIR/postgres");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(jpeg(900, 900))
            .file_name("keep.jpg")
            .mime_str("image/jpeg")
            .expect("mime"),
    );
    let body: serde_json::Value = http
        .post(format!("{base}/api/images"))
        .multipart(form)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    let done: serde_json::Value = loop {
        let v: serde_json::Value = http
            .get(format!("{base}/api/images/{id}?wait=10"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if v["status"] == "completed" {
            break v;
        }
    };
    assert_eq!(done["processed"]["width"], 800);

    first.signal(Signal::SIGTERM);
    let status = first
        .wait_exit(Duration::from_secs(60))
        .expect("did not exit on SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", first.log_text());
    assert!(
        !cluster_running(&data_dir),
        "cluster still running after exit:\n{}",
        first.log_text()
    );

    // Second run: same data directory, the image is still there.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut second = start(&data_dir, port);
    wait_ready(&http, &base, &second).await;
    let v: serde_json::Value = http
        .get(format!("{base}/api/images/{id}"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "completed", "data lost across restart: {v}");
    second.signal(Signal::SIGTERM);
    let status = second.wait_exit(Duration::from_secs(60)).expect("did not exit");
    assert!(status.success());
    assert!(!cluster_running(&data_dir));
}

/// Stops a cluster a failed run left behind and removes the test's directory.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let pid_file = self.0.join("data/postgres/postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGQUIT);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn missing_server_binaries_give_one_clear_line() {
    let dir = std::env::temp_dir().join(format!("ip-nobin-{}", uuid::Uuid::new_v4().simple()));
    let out = Command::new(env!("CARGO_BIN_EXE_image-processor"))
        .env_remove("DATABASE_URL")
        .env("DATA_DIR", &dir)
        .env("PATH", "/nonexistent")
        .env("IMAGE_PROCESSOR_PG_SEARCH", "/nonexistent")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apt-get install postgresql"),
        "unclear error: {stderr}"
    );
}
