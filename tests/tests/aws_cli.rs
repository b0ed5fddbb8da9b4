//! The aws cli (Debian's awscli package) against the server: `aws s3 cp` of a 100 MiB file, which
//! it sends as a multipart upload, and `aws s3 sync` of a directory tree both ways.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use sovereign_e2e::*;

/// Debian's aws cli; the `aws` first on PATH may be a pyenv shim without the package.
const AWS_CLI: &str = "/usr/bin/aws";
/// The aws cli's default multipart chunk size.
const CLI_CHUNK_SIZE_BYTES: usize = 8 * MIB;

/// Whether the aws cli is installed; the tests skip (and say so) where it is not.
fn aws_cli_installed() -> bool {
    let installed = Path::new(AWS_CLI).exists();
    if !installed {
        eprintln!("skipped: {AWS_CLI} is not installed (Debian package awscli)");
    }
    installed
}

/// Runs the aws cli against `server` as root, with no profile or config file of the machine,
/// and returns its stdout.
fn aws(server: &Server, args: &[&str]) -> String {
    let output = Command::new(AWS_CLI)
        .args(["--endpoint-url", server.url(), "--no-cli-pager"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", ROOT_USER)
        .env("AWS_SECRET_ACCESS_KEY", ROOT_PASSWORD)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("run the aws cli");
    assert!(output.status.success(), "aws {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[test]
fn cp_100_mib_up_and_down() {
    if !aws_cli_installed() {
        return;
    }
    let server = Server::start(4);
    aws(&server, &["s3", "mb", &format!("s3://{BUCKET}")]);
    let work = tempfile::tempdir().expect("work directory");
    let data = random_bytes(100 * MIB);
    let upload = work.path().join("upload.bin");
    let download = work.path().join("download.bin");
    fs::write(&upload, &data).expect("write upload file");

    let object = format!("s3://{BUCKET}/big/upload.bin");
    aws(&server, &["s3", "cp", "--no-progress", &path_arg(&upload), &object]);
    aws(&server, &["s3", "cp", "--no-progress", &object, &path_arg(&download)]);
    let downloaded = fs::read(&download).expect("read download");
    assert_eq!(md5_hex(&downloaded), md5_hex(&data), "downloaded file differs");

    let etag = aws(
        &server,
        &["s3api", "head-object", "--bucket", BUCKET, "--key", "big/upload.bin", "--query", "ETag", "--output", "text"],
    );
    let parts = data.len().div_ceil(CLI_CHUNK_SIZE_BYTES);
    let chunks: Vec<&[u8]> = data.chunks(CLI_CHUNK_SIZE_BYTES).collect();
    assert_eq!(chunks.len(), parts);
    assert_eq!(etag.trim(), multipart_etag(&chunks), "not the multipart ETag of {parts} parts");
}

/// Every file under `dir` by relative path, with the MD5 of its content.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(dir).expect("file under dir");
            let content = fs::read(&file).expect("read tree file");
            (relative.to_string_lossy().into_owned(), md5_hex(&content))
        })
        .collect()
}

#[test]
fn sync_a_tree_up_and_down() {
    if !aws_cli_installed() {
        return;
    }
    let server = Server::start(4);
    aws(&server, &["s3", "mb", &format!("s3://{BUCKET}")]);
    let work = tempfile::tempdir().expect("work directory");
    let source = work.path().join("source");
    for i in 0..20 {
        let relative = match i % 4 {
            0 => format!("top-{i}.txt"),
            1 => format!("nested/a/file-{i}.bin"),
            2 => format!("nested/b/deeper/file {i}.dat"),
            _ => format!("ünïcode/{i}.bin"),
        };
        let path = source.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("create tree dirs");
        // Inline and sharded sizes.
        fs::write(&path, random_bytes(1000 + i * 20 * 1024)).expect("write tree file");
    }
    let remote = format!("s3://{BUCKET}/tree");

    aws(&server, &["s3", "sync", "--no-progress", &path_arg(&source), &remote]);
    let changed = source.join("nested/a/file-5.bin");
    fs::write(&changed, random_bytes(777)).expect("modify a file");
    fs::remove_file(source.join("top-0.txt")).expect("remove a file");
    let second = aws(&server, &["s3", "sync", "--no-progress", "--delete", &path_arg(&source), &remote]);
    let actions: Vec<&str> = second.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(actions.len(), 2, "second sync should upload one file and delete one:\n{second}");
    assert!(second.contains("upload: ") && second.contains("file-5.bin"), "{second}");
    assert!(second.contains("delete: ") && second.contains("top-0.txt"), "{second}");

    let copy = work.path().join("copy");
    aws(&server, &["s3", "sync", "--no-progress", &remote, &path_arg(&copy)]);
    let expected = tree(&source);
    assert_eq!(expected.len(), 19);
    assert_eq!(tree(&copy), expected);
}
