//! `lazyfs BACKING MOUNTPOINT`: a FUSE filesystem for power-loss tests, in the spirit of Jepsen's
//! LazyFS. It serves BACKING's contents at MOUNTPOINT from memory; reads see every write, but only
//! what was synced (fsync, fdatasync, directory fsync) is durable. SIGUSR1 cuts the power: every
//! unsynced change is dropped and every later request fails with EIO. On unmount
//! (`fusermount3 -u MOUNTPOINT`) BACKING is rewritten to hold exactly the durable state.
//!
//! Prints `lazyfs mounted` once the mount is ready, and on exit one `lazyfs unmounted: ...` line
//! with what a power cut lost.

#![forbid(unsafe_code)]

mod fs;
mod model;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use clap::{Parser, ValueEnum};
use fuser::{Config, MountOption, Session};

use crate::fs::LazyFs;
use crate::model::{Model, SyncModel};

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "lazyfs", about = "A FUSE filesystem that loses every write not yet synced when told to cut power")]
struct Args {
    /// Directory whose contents are served, and rewritten on unmount with the durable state.
    backing: PathBuf,
    /// Where to mount (an existing empty directory).
    mountpoint: PathBuf,
    /// When creates, renames and deletes become durable.
    #[arg(long, value_enum, default_value_t = SyncModelArg::Journal)]
    sync_model: SyncModelArg,
}

/// [`SyncModel`] as a command-line value.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SyncModelArg {
    /// Only a directory's own fsync makes its entries durable (POSIX's promise).
    Strict,
    /// Any fsync commits every earlier create, rename and delete (ext4, XFS).
    Journal,
}

impl From<SyncModelArg> for SyncModel {
    fn from(arg: SyncModelArg) -> SyncModel {
        match arg {
            SyncModelArg::Strict => SyncModel::Strict,
            SyncModelArg::Journal => SyncModel::Journal,
        }
    }
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lazyfs: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let backing = &args.backing;
    let owner = std::fs::metadata(backing).map_err(|e| format!("{}: {e}", backing.display()))?;
    let model = Model::load(backing, args.sync_model.into()).map_err(|e| format!("load {}: {e}", backing.display()))?;
    let model = Arc::new(Mutex::new(model));
    let cut_requested = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&cut_requested))
        .map_err(|e| format!("install the SIGUSR1 handler: {e}"))?;

    let filesystem = LazyFs::new(Arc::clone(&model), Arc::clone(&cut_requested), owner.uid(), owner.gid());
    let mut config = Config::default();
    config.mount_options =
        vec![MountOption::FSName("lazyfs".to_owned()), MountOption::DefaultPermissions, MountOption::RW];
    let session = Session::new(filesystem, &args.mountpoint, &config)
        .map_err(|e| format!("mount {} (needs /dev/fuse and fusermount3): {e}", args.mountpoint.display()))?;
    announce("lazyfs mounted");
    let served = session.run();

    let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
    // A cut requested after the last request: nothing changed since, but the report tells it.
    if cut_requested.load(Ordering::SeqCst) {
        model.cut_power();
    }
    store(&model, backing)?;
    let outcome = match model.power_cut() {
        Some(report) => format!(
            "power_cut=yes files_with_unsynced_data={} dirs_with_unsynced_entries={}",
            report.files_with_unsynced_data, report.dirs_with_unsynced_entries
        ),
        None => "power_cut=no".to_owned(),
    };
    announce(&format!("lazyfs unmounted: {outcome}"));
    served.map_err(|e| format!("serve {}: {e}", args.mountpoint.display()))
}

/// Writes the durable state into `backing`.
fn store(model: &Model, backing: &Path) -> Result<(), String> {
    model.store(backing).map_err(|e| format!("store the durable state in {}: {e}", backing.display()))
}

/// A line on stdout, flushed at once: the test harness waits for it.
fn announce(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A harness that stopped reading has nothing left to learn from us.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}
