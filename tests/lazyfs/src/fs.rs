//! The FUSE side of lazyfs: translates kernel requests into [`Model`] operations, and turns the
//! "cut power" flag (set by SIGUSR1) into a power cut before the next request.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::model::{Attr, Kind, Model};

/// How long the kernel may cache names and attributes: lazyfs is their only writer, and after a
/// power cut nothing the kernel caches matters any more.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Block size reported in attributes and by statfs.
const BLOCK_SIZE_BYTES: u32 = 4096;
/// Capacity reported by statfs: the model lives in memory and sets no limit of its own.
const CAPACITY_BYTES: u64 = 64 << 30;
/// Inode capacity reported by statfs.
const CAPACITY_INODES: u64 = 1 << 20;
/// Longest file name.
const NAME_MAX_BYTES: u32 = 255;

/// The mounted filesystem: one [`Model`] behind a lock (requests are served one at a time anyway).
pub struct LazyFs {
    model: Arc<Mutex<Model>>,
    cut_requested: Arc<AtomicBool>,
    uid: u32,
    gid: u32,
}

impl LazyFs {
    /// Serves `model`; once `cut_requested` is set, the next request cuts the power.
    pub fn new(model: Arc<Mutex<Model>>, cut_requested: Arc<AtomicBool>, uid: u32, gid: u32) -> LazyFs {
        LazyFs { model, cut_requested, uid, gid }
    }

    /// The model, its power cut first if one was requested.
    fn model(&self) -> MutexGuard<'_, Model> {
        let mut model = self.model.lock().unwrap_or_else(PoisonError::into_inner);
        if self.cut_requested.load(Ordering::SeqCst) && model.power_cut().is_none() {
            let report = model.cut_power();
            eprintln!("lazyfs: power cut: {report:?}");
        }
        model
    }

    fn file_attr(&self, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(attr.ino),
            size: attr.size,
            blocks: attr.size.div_ceil(512),
            atime: attr.atime,
            mtime: attr.mtime,
            ctime: attr.ctime,
            crtime: attr.ctime,
            kind: file_type(attr.kind),
            perm: attr.perm,
            nlink: attr.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK_SIZE_BYTES,
            flags: 0,
        }
    }

    fn reply_entry(&self, result: Result<Attr, Errno>, reply: ReplyEntry) {
        match result {
            Ok(attr) => reply.entry(&CACHE_TTL, &self.file_attr(&attr), Generation(0)),
            Err(errno) => reply.error(errno),
        }
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

/// The permission bits of a `mode` after `umask`.
fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

fn time(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn reply_empty(result: Result<(), Errno>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(errno) => reply.error(errno),
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.reply_entry(self.model().lookup(parent.0, name), reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attr(ino.0) {
            Ok(attr) => reply.attr(&CACHE_TTL, &self.file_attr(&attr)),
            Err(errno) => reply.error(errno),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let perm = mode.map(|mode| perm(mode, 0));
        match self.model().setattr(ino.0, perm, size, atime.map(time), mtime.map(time)) {
            Ok(attr) => reply.attr(&CACHE_TTL, &self.file_attr(&attr)),
            Err(errno) => reply.error(errno),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let mut model = self.model();
        let created = model.create(parent.0, name, perm(mode, umask), true, false);
        // mknod does not open: give back the handle create took.
        let result = created.and_then(|attr| model.release(attr.ino).map(|()| attr));
        self.reply_entry(result, reply);
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        self.reply_entry(self.model().mkdir(parent.0, name, perm(mode, umask)), reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.model().unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(self.model().rmdir(parent.0, name), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        reply_empty(self.model().rename(parent.0, name, newparent.0, newname, no_replace), reply);
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        self.reply_entry(self.model().link(ino.0, newparent.0, newname), reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.model().open(ino.0, flags.0 & libc::O_TRUNC != 0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(errno) => reply.error(errno),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.model().read(ino.0, offset, size) {
            Ok(bytes) => reply.data(bytes),
            Err(errno) => reply.error(errno),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model().write(ino.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(errno) => reply.error(errno),
        }
    }

    fn flush(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // close() flushes nothing to disk: only fsync does.
        reply_empty(self.model().attr(ino.0).map(|_| ()), reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.model().release(ino.0), reply);
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply_empty(self.model().fsync(ino.0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().attr(ino.0) {
            Ok(attr) if attr.kind == Kind::Dir => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(errno) => reply.error(errno),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let listing = match self.model().readdir(ino.0) {
            Ok(listing) => listing,
            Err(errno) => return reply.error(errno),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (index, (child, kind, name)) in listing.into_iter().enumerate().skip(start) {
            // The offset of an entry is where the next readdir resumes: just past it.
            if reply.add(INodeNo(child), index as u64 + 1, file_type(kind), name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply_empty(self.model().fsyncdir(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (inodes, bytes) = match self.model().usage() {
            Ok(usage) => usage,
            Err(errno) => return reply.error(errno),
        };
        let blocks = CAPACITY_BYTES / u64::from(BLOCK_SIZE_BYTES);
        let free = blocks.saturating_sub(bytes.div_ceil(u64::from(BLOCK_SIZE_BYTES)));
        let free_inodes = CAPACITY_INODES.saturating_sub(inodes);
        reply.statfs(
            blocks,
            free,
            free,
            CAPACITY_INODES,
            free_inodes,
            BLOCK_SIZE_BYTES,
            NAME_MAX_BYTES,
            BLOCK_SIZE_BYTES,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply_empty(self.model().attr(ino.0).map(|_| ()), reply);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let exclusive = flags & libc::O_EXCL != 0;
        let truncate = flags & libc::O_TRUNC != 0;
        match self.model().create(parent.0, name, perm(mode, umask), exclusive, truncate) {
            Ok(attr) => {
                reply.created(&CACHE_TTL, &self.file_attr(&attr), Generation(0), FileHandle(0), FopenFlags::empty())
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(self.model().fallocate(ino.0, offset, length, mode), reply);
    }
}
