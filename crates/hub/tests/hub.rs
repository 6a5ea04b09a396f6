//! Downloads through the real client (hf-hub over HTTP) from a hub the test starts on
//! 127.0.0.1 (ortl_fixtures::hub), which answers as huggingface.co does.

use ortl_fixtures::hub::{Hub as TestHub, sha256_hex};
use ortl_hub::{Hub, HubError, HubFile, Pin, cache};

const REPO: &str = "test-org/weights.in1k";

/// A file large enough to be served as an LFS object (redirect, declared hash).
fn weights_bytes() -> Vec<u8> {
    (0..200_000u32)
        .flat_map(|i| (i.wrapping_mul(2654435761)).to_le_bytes())
        .collect()
}

fn file(name: &str) -> HubFile {
    HubFile::parse(&format!("hf:{REPO}:{name}"), None).unwrap()
}

fn hub(dir: &std::path::Path, server: &TestHub) -> Hub {
    Hub::new("test", dir.join("hub"), server.url(), false)
}

#[test]
fn downloads_once_then_serves_from_the_cache_without_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    let commit = server.put(REPO, "model.safetensors", &bytes);
    let client = hub(dir.path(), &server);
    let first = client
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap();
    assert!(first.downloaded);
    assert_eq!(std::fs::read(&first.path).unwrap(), bytes);
    assert_eq!(first.sha256, sha256_hex(&bytes));
    assert_eq!(first.commit, commit);
    assert_eq!(first.size, bytes.len() as u64);
    assert!(!first.pinned, "no pin was given");
    // The LFS file came through the redirect to the content host.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/lfs/"))
    );
    let endpoint = server.url().to_string();
    drop(server);

    // The server is gone: the cache answers, offline or not.
    for offline in [false, true] {
        let again = Hub::new("test", dir.path().join("hub"), &endpoint, offline)
            .fetch(&file("model.safetensors"), Pin::default(), "x")
            .unwrap();
        assert!(!again.downloaded);
        assert_eq!(again.path, first.path);
        assert_eq!(again.sha256, first.sha256);
        assert_eq!(again.commit, commit);
    }
    let listed = cache::list(&dir.path().join("hub")).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].repo, REPO);
    assert_eq!(listed[0].file, "model.safetensors");
    assert_eq!(listed[0].sha256, first.sha256);
    assert_eq!(listed[0].size, bytes.len() as u64);
}

#[test]
fn a_pinned_revision_and_a_small_file_download_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let commit = server.put(REPO, "config.json", b"{\"architecture\": \"x\"}");
    let pinned = HubFile::parse(&format!("hf:{REPO}@{commit}:config.json"), None).unwrap();
    let fetched = hub(dir.path(), &server)
        .fetch(&pinned, Pin::default(), "x")
        .unwrap();
    assert_eq!(
        std::fs::read(&fetched.path).unwrap(),
        b"{\"architecture\": \"x\"}"
    );
    assert_eq!(fetched.commit, commit);
}

#[test]
fn offline_without_a_cached_copy_names_the_file_the_cache_and_the_alternative() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::new("test", dir.path().join("hub"), "http://127.0.0.1:9", true);
    let error = hub
        .fetch(&file("model.safetensors"), Pin::default(), "resnet50")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HubError::Offline { .. }), "{message}");
    for part in [
        REPO,
        "model.safetensors",
        "HF_HUB_OFFLINE",
        &dir.path().join("hub").display().to_string(),
        "ortl-weights fetch resnet50",
        "--weights FILE",
    ] {
        assert!(message.contains(part), "'{part}' missing from: {message}");
    }
    assert!(!message.contains('\n'));
}

#[test]
fn no_network_is_one_line_naming_the_cache_and_the_alternative() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = Hub::new(
        "test",
        dir.path().join("hub"),
        &format!("http://127.0.0.1:{port}"),
        false,
    );
    let error = hub
        .fetch(&file("model.safetensors"), Pin::default(), "resnet50")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HubError::Unreachable { .. }), "{message}");
    assert!(
        message.contains("--weights FILE") && message.contains(REPO),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_corrupt_transfer_is_refused_named_and_not_left_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    server.put(REPO, "model.safetensors", &bytes);
    server.corrupt_next_download();
    let error = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HubError::Corrupt { .. }), "{message}");
    assert!(message.contains(&sha256_hex(&bytes)), "{message}");
    assert!(message.contains("removed from the cache"), "{message}");
    assert!(cache::list(&dir.path().join("hub")).unwrap().is_empty());
    let blobs = dir.path().join("hub/models--test-org--weights.in1k/blobs");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");
    // The next run downloads it afresh.
    let fetched = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap();
    assert_eq!(std::fs::read(&fetched.path).unwrap(), bytes);
}

#[test]
fn a_small_file_is_checked_against_its_git_blob_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    // Below the LFS threshold: served with a git-style ETag, not a SHA-256.
    let small = br#"{"num_classes": 1000}"#;
    server.put(REPO, "config.json", small);
    server.corrupt_next_download();
    let error = hub(dir.path(), &server)
        .fetch(&file("config.json"), Pin::default(), "x")
        .unwrap_err();
    assert!(matches!(error, HubError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("git blob"), "{error}");
}

#[test]
fn a_file_that_differs_from_the_pin_is_refused_but_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    let commit = server.put(REPO, "model.safetensors", &bytes);
    let wrong = "0".repeat(64);
    let pin = Pin {
        sha256: Some(&wrong),
        size: None,
    };
    let error = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), pin, "x")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HubError::PinMismatch { .. }), "{message}");
    assert!(
        message.contains(&sha256_hex(&bytes)) && message.contains(&wrong),
        "{message}"
    );
    // The hub's own file is good: kept, and named by its commit it loads.
    assert_eq!(cache::list(&dir.path().join("hub")).unwrap().len(), 1);
    assert!(
        message.contains(&format!("--weights hf:{REPO}@{commit}:model.safetensors")),
        "{message}"
    );
    let by_commit = HubFile::parse(&format!("hf:{REPO}@{commit}:model.safetensors"), None).unwrap();
    hub(dir.path(), &server)
        .fetch(&by_commit, Pin::default(), "x")
        .unwrap();

    // The right hash and a wrong size.
    let right = sha256_hex(&bytes);
    let sized = Pin {
        sha256: Some(&right),
        size: Some(bytes.len() as u64 + 1),
    };
    let error = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), sized, "x")
        .unwrap_err();
    assert!(error.to_string().contains("bytes"), "{error}");
    let good = Pin {
        sha256: Some(&right),
        size: Some(bytes.len() as u64),
    };
    let fetched = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), good, "x")
        .unwrap();
    assert!(fetched.pinned);
}

#[test]
fn a_commit_pinned_file_is_found_in_a_cache_without_refs_as_python_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    let commit = server.put_at(REPO, &"ab".repeat(20), "model.safetensors", &bytes);
    let pinned = HubFile::parse(&format!("hf:{REPO}@{commit}:model.safetensors"), None).unwrap();
    hub(dir.path(), &server)
        .fetch(&pinned, Pin::default(), "x")
        .unwrap();
    // huggingface_hub writes no refs/<commit>: only the snapshot must be needed.
    std::fs::remove_dir_all(dir.path().join("hub/models--test-org--weights.in1k/refs")).unwrap();
    let offline = Hub::new("test", dir.path().join("hub"), server.url(), true);
    let again = offline.fetch(&pinned, Pin::default(), "x").unwrap();
    assert!(!again.downloaded);
    assert_eq!(again.commit, commit);
}

#[test]
fn a_partial_file_that_cannot_be_resumed_is_dropped_and_the_download_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    server.put(REPO, "model.safetensors", &bytes);
    let blobs = dir.path().join("hub/models--test-org--weights.in1k/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    // Longer than the file (hf-hub's InvalidResume), then exactly the file (a 416).
    for extra in [10usize, 0] {
        let part = blobs.join(format!("{}.part", sha256_hex(&bytes)));
        std::fs::write(&part, vec![0u8; bytes.len() + extra]).unwrap();
        let fetched = hub(dir.path(), &server)
            .fetch(&file("model.safetensors"), Pin::default(), "x")
            .unwrap_or_else(|e| panic!("a .part {extra} bytes over: {e}"));
        assert_eq!(std::fs::read(&fetched.path).unwrap(), bytes);
        std::fs::remove_dir_all(dir.path().join("hub")).unwrap();
        std::fs::create_dir_all(&blobs).unwrap();
    }
}

#[test]
fn an_interrupted_transfer_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    server.put(REPO, "model.safetensors", &bytes);
    let cut = 300_000;
    server.cut_next_download(cut);
    let error = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, HubError::Interrupted { .. }), "{message}");
    assert!(message.contains("run the same command again"), "{message}");
    let partial = cache::partial_bytes(&dir.path().join("hub"), &file("model.safetensors"));
    assert!(partial > 0 && partial <= cut as u64, "{partial} bytes kept");
    assert!(message.contains(&partial.to_string()), "{message}");

    let fetched = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap();
    assert_eq!(std::fs::read(&fetched.path).unwrap(), bytes);
    let resumed = format!("bytes={partial}-");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.range.as_deref() == Some(resumed.as_str())),
        "no request resumed at {partial}: {:?}",
        server.requests()
    );
}

#[test]
fn a_missing_file_or_repository_is_a_404_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    server.put(REPO, "model.safetensors", &weights_bytes());
    for (wanted, code) in [
        (file("pytorch_model.safetensors"), "EntryNotFound"),
        // Answered 401 by the hub without a token, and still "not found".
        (
            HubFile::parse("hf:test-org/nothing-here", Some("model.safetensors")).unwrap(),
            "RepoNotFound",
        ),
        (
            HubFile::parse(&format!("hf:{REPO}@v9:model.safetensors"), None).unwrap(),
            "RevisionNotFound",
        ),
    ] {
        let error = hub(dir.path(), &server)
            .fetch(&wanted, Pin::default(), "x")
            .unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, HubError::NotFound { .. }), "{message}");
        assert!(
            message.contains(&wanted.repo) && message.contains(&wanted.file),
            "{message}"
        );
        assert!(message.contains(code), "{message}");
    }
}

#[test]
fn a_token_is_sent_as_a_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    server.put(REPO, "model.safetensors", &weights_bytes());
    std::fs::create_dir_all(dir.path()).unwrap();
    // Written where `huggingface-cli login` writes it: HF_HOME/token.
    std::fs::write(dir.path().join("token"), "hf_test_token\n").unwrap();
    hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap();
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.authorization.as_deref() == Some("Bearer hf_test_token"))
    );
}

#[test]
fn a_download_another_process_holds_is_waited_for_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestHub::start();
    let bytes = weights_bytes();
    let commit = server.put(REPO, "model.safetensors", &bytes);
    let sha = sha256_hex(&bytes);
    let repo_dir = dir.path().join("hub/models--test-org--weights.in1k");
    std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
    // The other process: holds hf-hub's lock on the blob, writes the file into the cache
    // as a download does, then lets go.
    let lock = std::fs::File::create(repo_dir.join(format!("blobs/{sha}.lock"))).unwrap();
    lock.lock().unwrap();
    let other = {
        let (repo_dir, bytes, sha, commit) =
            (repo_dir.clone(), bytes.clone(), sha.clone(), commit.clone());
        std::thread::spawn(move || {
            // Past hf-hub's own five one-second tries.
            std::thread::sleep(std::time::Duration::from_secs(7));
            std::fs::write(repo_dir.join(format!("blobs/{sha}")), &bytes).unwrap();
            let snapshot = repo_dir.join(format!("snapshots/{commit}"));
            std::fs::create_dir_all(&snapshot).unwrap();
            std::os::unix::fs::symlink(
                format!("../../blobs/{sha}"),
                snapshot.join("model.safetensors"),
            )
            .unwrap();
            std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
            std::fs::write(repo_dir.join("refs/main"), &commit).unwrap();
            lock.unlock().unwrap();
        })
    };
    let fetched = hub(dir.path(), &server)
        .fetch(&file("model.safetensors"), Pin::default(), "x")
        .unwrap();
    other.join().unwrap();
    assert!(!fetched.downloaded, "fetched again instead of waiting");
    assert_eq!(std::fs::read(&fetched.path).unwrap(), bytes);
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/lfs/") && r.range.as_deref() != Some("bytes=0-0")),
        "the body was transferred a second time: {:?}",
        server.requests()
    );
}
