//! The state lazyfs keeps in memory: the live tree that processes see (the page cache, every
//! write applied) and the durable tree that a power cut leaves (the disk), with the sync rules that
//! copy one into the other.
//!
//! Inode numbers are shared by both trees, so a file fsynced before its name is durable keeps its
//! synced bytes once a directory sync makes the name durable. Numbers are never reused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use fuser::Errno;

/// An inode number.
pub type Ino = u64;

/// The root directory's inode number (FUSE's).
pub const ROOT: Ino = 1;

/// Permission bits of a directory created by [`Model::new`] (the mount point's root).
const ROOT_PERM: u16 = 0o755;

/// When namespace changes (create, mkdir, rename, unlink, link) become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncModel {
    /// POSIX's promise and nothing more: a directory's entries are durable once that directory is
    /// fsynced. A new directory's own name is durable only once its parent is fsynced.
    Strict,
    /// A journaling filesystem's behaviour (ext4, XFS): any fsync, fdatasync or directory fsync
    /// commits every namespace change made before it. File data still needs its own file's sync.
    Journal,
}

/// The kind of an inode: lazyfs has regular files and directories only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Attributes of a live inode, as FUSE reports them.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// The contents of an inode, in either tree.
#[derive(Clone, Debug, PartialEq)]
enum Data {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, Ino>),
}

impl Data {
    fn kind(&self) -> Kind {
        match self {
            Data::File(_) => Kind::File,
            Data::Dir(_) => Kind::Dir,
        }
    }

    /// What a power cut leaves of an inode never synced itself: no bytes, no entries.
    fn empty_like(&self) -> Data {
        match self {
            Data::File(_) => Data::File(Vec::new()),
            Data::Dir(_) => Data::Dir(BTreeMap::new()),
        }
    }
}

/// An inode as processes see it.
#[derive(Clone, Debug)]
struct LiveNode {
    data: Data,
    perm: u16,
    nlink: u32,
    /// Open file handles: an unlinked file lives on until the last is released.
    open_handles: u32,
    /// The parent of a directory (itself for the root); unused for files.
    parent: Ino,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl LiveNode {
    fn new(data: Data, perm: u16, parent: Ino) -> LiveNode {
        let now = SystemTime::now();
        let nlink = if data.kind() == Kind::Dir { 2 } else { 1 };
        LiveNode { data, perm, nlink, open_handles: 0, parent, atime: now, mtime: now, ctime: now }
    }

    fn touch(&mut self) {
        let now = SystemTime::now();
        self.mtime = now;
        self.ctime = now;
    }
}

/// An inode as a power cut would leave it.
#[derive(Clone, Debug, PartialEq)]
struct DurableNode {
    data: Data,
    perm: u16,
}

/// What a power cut threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose live bytes differed from their durable bytes (or that had none).
    pub files_with_unsynced_data: usize,
    /// Directories whose live entries differed from their durable entries (or that had none).
    pub dirs_with_unsynced_entries: usize,
}

/// Both trees and the power state.
#[derive(Clone, Debug)]
pub struct Model {
    live: HashMap<Ino, LiveNode>,
    durable: HashMap<Ino, DurableNode>,
    next_ino: Ino,
    sync_model: SyncModel,
    /// Set by [`Model::cut_power`]; from then on every operation fails.
    cut: Option<CutReport>,
}

type Result<T> = std::result::Result<T, Errno>;

fn io_error(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno.code())
}

impl Model {
    /// An empty filesystem: a root directory, durable.
    pub fn new(sync_model: SyncModel) -> Model {
        let mut model =
            Model { live: HashMap::new(), durable: HashMap::new(), next_ino: ROOT + 1, sync_model, cut: None };
        model.live.insert(ROOT, LiveNode::new(Data::Dir(BTreeMap::new()), ROOT_PERM, ROOT));
        model.durable.insert(ROOT, DurableNode { data: Data::Dir(BTreeMap::new()), perm: ROOT_PERM });
        model
    }

    /// A filesystem holding what `dir` holds (regular files and directories; hard links kept),
    /// all of it durable.
    pub fn load(dir: &Path, sync_model: SyncModel) -> io::Result<Model> {
        let mut model = Model::new(sync_model);
        let root_perm = (fs::metadata(dir)?.mode() & 0o7777) as u16;
        if let Some(root) = model.live.get_mut(&ROOT) {
            root.perm = root_perm;
        }
        let mut by_host_inode = HashMap::new();
        model.load_dir(dir, ROOT, &mut by_host_inode)?;
        model.durable = model
            .live
            .iter()
            .map(|(&ino, node)| (ino, DurableNode { data: node.data.clone(), perm: node.perm }))
            .collect();
        Ok(model)
    }

    fn load_dir(&mut self, dir: &Path, parent: Ino, by_host_inode: &mut HashMap<(u64, u64), Ino>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let meta = fs::symlink_metadata(entry.path())?;
            let perm = (meta.mode() & 0o7777) as u16;
            let ino = if meta.is_dir() {
                let ino = self.insert(LiveNode::new(Data::Dir(BTreeMap::new()), perm, parent));
                self.node_mut(parent).map_err(io_error)?.nlink += 1;
                self.add_entry(parent, entry.file_name(), ino).map_err(io_error)?;
                self.load_dir(&entry.path(), ino, by_host_inode)?;
                continue;
            } else if meta.is_file() {
                if let Some(&ino) = by_host_inode.get(&(meta.dev(), meta.ino())) {
                    self.node_mut(ino).map_err(io_error)?.nlink += 1;
                    ino
                } else {
                    let ino = self.insert(LiveNode::new(Data::File(fs::read(entry.path())?), perm, parent));
                    by_host_inode.insert((meta.dev(), meta.ino()), ino);
                    ino
                }
            } else {
                return Err(io::Error::other(format!(
                    "{}: lazyfs holds regular files and directories only",
                    entry.path().display()
                )));
            };
            self.add_entry(parent, entry.file_name(), ino).map_err(io_error)?;
        }
        Ok(())
    }

    /// Replaces everything in `dir` by the durable tree: what a disk holds after the power came back.
    pub fn store(&self, dir: &Path) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        let mut written = HashMap::new();
        self.store_dir(ROOT, dir, &mut written)?;
        if let Some(root) = self.durable.get(&ROOT) {
            fs::set_permissions(dir, fs::Permissions::from_mode(u32::from(root.perm)))?;
        }
        Ok(())
    }

    fn store_dir(&self, ino: Ino, dir: &Path, written: &mut HashMap<Ino, std::path::PathBuf>) -> io::Result<()> {
        let Some(DurableNode { data: Data::Dir(entries), .. }) = self.durable.get(&ino) else {
            return Err(io::Error::other(format!("durable inode {ino} is not a directory")));
        };
        for (name, &child) in entries {
            let path = dir.join(name);
            let node = self
                .durable
                .get(&child)
                .ok_or_else(|| io::Error::other(format!("durable entry {name:?} names no durable inode")))?;
            match &node.data {
                Data::Dir(_) => {
                    fs::create_dir(&path)?;
                    self.store_dir(child, &path, written)?;
                }
                Data::File(bytes) => {
                    if let Some(first) = written.get(&child) {
                        fs::hard_link(first, &path)?;
                        continue;
                    }
                    fs::write(&path, bytes)?;
                    written.insert(child, path.clone());
                }
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(u32::from(node.perm)))?;
        }
        Ok(())
    }

    /// Drops every unsynced change: the live tree is gone and every later operation fails with
    /// EIO. The durable tree stays for [`Model::store`].
    pub fn cut_power(&mut self) -> CutReport {
        if let Some(report) = self.cut {
            return report;
        }
        let mut report = CutReport::default();
        for (ino, node) in &self.live {
            let durable = self.durable.get(ino).map(|d| &d.data);
            if durable == Some(&node.data) {
                continue;
            }
            match node.data {
                Data::File(_) if node.nlink > 0 => report.files_with_unsynced_data += 1,
                Data::Dir(_) => report.dirs_with_unsynced_entries += 1,
                Data::File(_) => {}
            }
        }
        self.live.clear();
        self.cut = Some(report);
        report
    }

    /// What the power cut threw away, once it happened.
    pub fn power_cut(&self) -> Option<CutReport> {
        self.cut
    }

    fn powered(&self) -> Result<()> {
        match self.cut {
            None => Ok(()),
            Some(_) => Err(Errno::EIO),
        }
    }

    fn insert(&mut self, node: LiveNode) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.live.insert(ino, node);
        ino
    }

    fn node(&self, ino: Ino) -> Result<&LiveNode> {
        self.powered()?;
        self.live.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut LiveNode> {
        self.powered()?;
        self.live.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>> {
        match &self.node(dir)?.data {
            Data::Dir(entries) => Ok(entries),
            Data::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>> {
        let node = self.node_mut(dir)?;
        node.touch();
        match &mut node.data {
            Data::Dir(entries) => Ok(entries),
            Data::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn bytes_mut(&mut self, ino: Ino) -> Result<&mut Vec<u8>> {
        match &mut self.node_mut(ino)?.data {
            Data::File(bytes) => Ok(bytes),
            Data::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn add_entry(&mut self, dir: Ino, name: OsString, ino: Ino) -> Result<()> {
        self.entries_mut(dir)?.insert(name, ino);
        Ok(())
    }

    fn child(&self, dir: Ino, name: &OsStr) -> Result<Ino> {
        self.entries(dir)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    /// The attributes of a live inode.
    pub fn attr(&self, ino: Ino) -> Result<Attr> {
        let node = self.node(ino)?;
        let size = match &node.data {
            Data::File(bytes) => bytes.len() as u64,
            Data::Dir(entries) => entries.len() as u64,
        };
        Ok(Attr {
            ino,
            kind: node.data.kind(),
            size,
            perm: node.perm,
            nlink: node.nlink,
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
        })
    }

    /// Looks a name up in a directory.
    pub fn lookup(&self, dir: Ino, name: &OsStr) -> Result<Attr> {
        self.attr(self.child(dir, name)?)
    }

    /// Changes permissions, size (truncate or extend with zeros) and times.
    pub fn setattr(
        &mut self,
        ino: Ino,
        perm: Option<u16>,
        size: Option<u64>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Result<Attr> {
        if let Some(size) = size {
            let len = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
            self.bytes_mut(ino)?.resize(len, 0);
            self.node_mut(ino)?.touch();
        }
        let node = self.node_mut(ino)?;
        if let Some(perm) = perm {
            node.perm = perm;
            node.ctime = SystemTime::now();
        }
        if let Some(atime) = atime {
            node.atime = atime;
        }
        if let Some(mtime) = mtime {
            node.mtime = mtime;
        }
        self.attr(ino)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, perm: u16) -> Result<Attr> {
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.insert(LiveNode::new(Data::Dir(BTreeMap::new()), perm, parent));
        self.add_entry(parent, name.to_owned(), ino)?;
        self.node_mut(parent)?.nlink += 1;
        self.attr(ino)
    }

    /// Creates and opens a regular file, or opens the one that exists (unless `exclusive`).
    pub fn create(&mut self, parent: Ino, name: &OsStr, perm: u16, exclusive: bool, truncate: bool) -> Result<Attr> {
        let ino = match self.entries(parent)?.get(name) {
            Some(_) if exclusive => return Err(Errno::EEXIST),
            Some(&ino) => {
                if truncate {
                    self.bytes_mut(ino)?.clear();
                }
                self.bytes_mut(ino)?;
                ino
            }
            None => {
                let ino = self.insert(LiveNode::new(Data::File(Vec::new()), perm, parent));
                self.add_entry(parent, name.to_owned(), ino)?;
                ino
            }
        };
        self.node_mut(ino)?.open_handles += 1;
        self.attr(ino)
    }

    /// Opens an existing inode (file or directory).
    pub fn open(&mut self, ino: Ino, truncate: bool) -> Result<()> {
        if truncate {
            self.bytes_mut(ino)?.clear();
        }
        self.node_mut(ino)?.open_handles += 1;
        Ok(())
    }

    /// Closes what [`Model::open`] or [`Model::create`] opened; an unlinked file goes with its
    /// last handle.
    pub fn release(&mut self, ino: Ino) -> Result<()> {
        let node = self.node_mut(ino)?;
        node.open_handles = node.open_handles.saturating_sub(1);
        self.forget_if_unreachable(ino);
        Ok(())
    }

    fn forget_if_unreachable(&mut self, ino: Ino) {
        if self.live.get(&ino).is_some_and(|n| n.nlink == 0 && n.open_handles == 0) {
            self.live.remove(&ino);
        }
    }

    /// Removes a file's name.
    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = self.child(parent, name)?;
        if self.node(ino)?.data.kind() == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        self.entries_mut(parent)?.remove(name);
        self.drop_link(ino)
    }

    fn drop_link(&mut self, ino: Ino) -> Result<()> {
        let node = self.node_mut(ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        node.ctime = SystemTime::now();
        self.forget_if_unreachable(ino);
        Ok(())
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<()> {
        let ino = self.child(parent, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.entries_mut(parent)?.remove(name);
        self.node_mut(parent)?.nlink -= 1;
        self.live.remove(&ino);
        Ok(())
    }

    /// Renames, replacing the target unless `no_replace`.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<()> {
        let ino = self.child(parent, name)?;
        self.entries(new_parent)?;
        let is_dir = self.node(ino)?.data.kind() == Kind::Dir;
        if is_dir && self.is_ancestor(ino, new_parent) {
            return Err(Errno::EINVAL);
        }
        if let Some(&target) = self.entries(new_parent)?.get(new_name) {
            if target == ino {
                return Ok(());
            }
            if no_replace {
                return Err(Errno::EEXIST);
            }
            match (is_dir, self.node(target)?.data.kind()) {
                (true, Kind::File) => return Err(Errno::ENOTDIR),
                (false, Kind::Dir) => return Err(Errno::EISDIR),
                (true, Kind::Dir) => self.rmdir(new_parent, new_name)?,
                (false, Kind::File) => self.unlink(new_parent, new_name)?,
            }
        }
        self.entries_mut(parent)?.remove(name);
        self.add_entry(new_parent, new_name.to_owned(), ino)?;
        if is_dir && parent != new_parent {
            self.node_mut(parent)?.nlink -= 1;
            self.node_mut(new_parent)?.nlink += 1;
            self.node_mut(ino)?.parent = new_parent;
        }
        self.node_mut(ino)?.ctime = SystemTime::now();
        Ok(())
    }

    /// Whether `ancestor` is `ino` or one of its parents.
    fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.live.get(&ino) {
                Some(node) if node.parent != ino => ino = node.parent,
                _ => return false,
            }
        }
    }

    /// Adds a name for an existing file.
    pub fn link(&mut self, ino: Ino, new_parent: Ino, new_name: &OsStr) -> Result<Attr> {
        if self.node(ino)?.data.kind() == Kind::Dir {
            return Err(Errno::EPERM);
        }
        if self.entries(new_parent)?.contains_key(new_name) {
            return Err(Errno::EEXIST);
        }
        self.add_entry(new_parent, new_name.to_owned(), ino)?;
        let node = self.node_mut(ino)?;
        node.nlink += 1;
        node.ctime = SystemTime::now();
        self.attr(ino)
    }

    /// Up to `size` bytes from `offset`: the live bytes, synced or not.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8]> {
        let Data::File(bytes) = &self.node(ino)?.data else {
            return Err(Errno::EISDIR);
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let end = start.saturating_add(size as usize).min(bytes.len());
        Ok(&bytes[start..end])
    }

    /// Writes at `offset`, extending the file with zeros if it starts past the end. Only the live
    /// tree changes.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<u32> {
        let written = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(data.len()).ok_or(Errno::EFBIG)?;
        let bytes = self.bytes_mut(ino)?;
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        self.node_mut(ino)?.touch();
        Ok(written)
    }

    /// `fallocate(2)`: mode 0 extends the file, `FALLOC_FL_KEEP_SIZE` alone is a no-op (space
    /// is not modelled), punching holes and zeroing ranges write zeros.
    pub fn fallocate(&mut self, ino: Ino, offset: u64, length: u64, mode: i32) -> Result<()> {
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(usize::try_from(length).map_err(|_| Errno::EFBIG)?).ok_or(Errno::EFBIG)?;
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let zero = mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0;
        if mode & !(libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let bytes = self.bytes_mut(ino)?;
        if !keep_size && bytes.len() < end {
            bytes.resize(end, 0);
        }
        if zero {
            let zero_end = end.min(bytes.len());
            if start < zero_end {
                bytes[start..zero_end].fill(0);
            }
        }
        if !keep_size || zero {
            self.node_mut(ino)?.touch();
        }
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its bytes become durable (and, with [`SyncModel::Journal`],
    /// every namespace change so far). On a directory it is a directory sync.
    pub fn fsync(&mut self, ino: Ino) -> Result<()> {
        let node = self.node(ino)?;
        let synced = match &node.data {
            Data::Dir(_) => return self.fsyncdir(ino),
            Data::File(bytes) => DurableNode { data: Data::File(bytes.clone()), perm: node.perm },
        };
        self.durable.insert(ino, synced);
        if self.sync_model == SyncModel::Journal {
            self.commit_namespace();
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries become durable ([`SyncModel::Strict`]), or every
    /// namespace change so far ([`SyncModel::Journal`]).
    pub fn fsyncdir(&mut self, ino: Ino) -> Result<()> {
        self.entries(ino)?;
        match self.sync_model {
            SyncModel::Strict => {
                self.commit_dir(ino);
                self.collect_durable_garbage();
            }
            SyncModel::Journal => self.commit_namespace(),
        }
        Ok(())
    }

    /// Makes a live directory's entries durable. Children never synced themselves become durable
    /// empty: a file's bytes need the file's own sync, a directory's entries its own.
    fn commit_dir(&mut self, ino: Ino) {
        let Some(node) = self.live.get(&ino) else {
            return;
        };
        let Data::Dir(entries) = &node.data else {
            return;
        };
        for child in entries.values() {
            if let (false, Some(live)) = (self.durable.contains_key(child), self.live.get(child)) {
                self.durable.insert(*child, DurableNode { data: live.data.empty_like(), perm: live.perm });
            }
        }
        let durable =
            self.durable.entry(ino).or_insert(DurableNode { data: Data::Dir(BTreeMap::new()), perm: node.perm });
        durable.data = Data::Dir(entries.clone());
        durable.perm = node.perm;
    }

    /// Makes every live directory's entries durable.
    fn commit_namespace(&mut self) {
        let dirs: Vec<Ino> =
            self.live.iter().filter(|(_, node)| node.data.kind() == Kind::Dir).map(|(&ino, _)| ino).collect();
        for dir in dirs {
            self.commit_dir(dir);
        }
        self.collect_durable_garbage();
    }

    /// Forgets durable inodes that no durable directory names and no live name can make durable
    /// again: the synced bytes of deleted files.
    fn collect_durable_garbage(&mut self) {
        let mut reachable = HashSet::from([ROOT]);
        let mut pending = vec![ROOT];
        while let Some(ino) = pending.pop() {
            if let Some(DurableNode { data: Data::Dir(entries), .. }) = self.durable.get(&ino) {
                for &child in entries.values() {
                    if reachable.insert(child) {
                        pending.push(child);
                    }
                }
            }
        }
        let live = &self.live;
        self.durable.retain(|ino, _| reachable.contains(ino) || live.get(ino).is_some_and(|n| n.nlink > 0));
    }

    /// The entries of a directory, `.` and `..` first.
    pub fn readdir(&self, ino: Ino) -> Result<Vec<(Ino, Kind, OsString)>> {
        let parent = self.node(ino)?.parent;
        let mut listing = vec![(ino, Kind::Dir, OsString::from(".")), (parent, Kind::Dir, OsString::from(".."))];
        for (name, &child) in self.entries(ino)? {
            listing.push((child, self.node(child)?.data.kind(), name.clone()));
        }
        Ok(listing)
    }

    /// Inodes and bytes the live tree holds, for `statfs`.
    pub fn usage(&self) -> Result<(u64, u64)> {
        self.powered()?;
        let bytes = self
            .live
            .values()
            .map(|node| match &node.data {
                Data::File(bytes) => bytes.len() as u64,
                Data::Dir(_) => 0,
            })
            .sum();
        Ok((self.live.len() as u64, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERM: u16 = 0o644;

    fn name(text: &str) -> &OsStr {
        OsStr::new(text)
    }

    /// A file `name` in `parent` holding `bytes`, written but not synced.
    fn written_file(model: &mut Model, parent: Ino, file: &str, bytes: &[u8]) -> Ino {
        let ino = model.create(parent, name(file), PERM, true, false).expect("create").ino;
        model.write(ino, 0, bytes).expect("write");
        model.release(ino).expect("release");
        ino
    }

    /// The tree a power cut leaves, as a host directory read back into a fresh model.
    fn after_power_cut(model: &mut Model) -> Model {
        model.cut_power();
        let dir = tempfile::tempdir().expect("temporary directory");
        model.store(dir.path()).expect("store durable tree");
        Model::load(dir.path(), model.sync_model).expect("load durable tree")
    }

    fn contents(model: &Model, path: &[&str]) -> Option<Vec<u8>> {
        let mut ino = ROOT;
        for part in path {
            ino = model.child(ino, name(part)).ok()?;
        }
        model.read(ino, 0, u32::MAX).ok().map(<[u8]>::to_vec)
    }

    #[test]
    fn reads_see_unsynced_writes_and_a_power_cut_loses_them() {
        for sync_model in [SyncModel::Strict, SyncModel::Journal] {
            let mut model = Model::new(sync_model);
            let ino = written_file(&mut model, ROOT, "wal", b"first");
            model.fsyncdir(ROOT).expect("fsync root");
            model.fsync(ino).expect("fsync");
            model.write(ino, 5, b" second").expect("append");
            assert_eq!(contents(&model, &["wal"]).as_deref(), Some(&b"first second"[..]));
            let after = after_power_cut(&mut model);
            assert_eq!(contents(&after, &["wal"]).as_deref(), Some(&b"first"[..]), "{sync_model:?}");
        }
    }

    #[test]
    fn every_operation_fails_after_a_power_cut() {
        let mut model = Model::new(SyncModel::Strict);
        let ino = written_file(&mut model, ROOT, "f", b"x");
        let report = model.cut_power();
        assert_eq!(report.files_with_unsynced_data, 1);
        assert_eq!(model.read(ino, 0, 1).err(), Some(Errno::EIO));
        assert_eq!(model.attr(ROOT).err(), Some(Errno::EIO));
        assert_eq!(model.fsync(ino).err(), Some(Errno::EIO));
    }

    #[test]
    fn strict_a_new_name_needs_its_directory_synced() {
        let mut model = Model::new(SyncModel::Strict);
        let ino = written_file(&mut model, ROOT, "f", b"data");
        model.fsync(ino).expect("fsync file");
        let lost = after_power_cut(&mut model.clone());
        assert_eq!(contents(&lost, &["f"]), None, "file fsynced but its directory not: the name is lost");
        model.fsyncdir(ROOT).expect("fsync root");
        let kept = after_power_cut(&mut model);
        assert_eq!(contents(&kept, &["f"]).as_deref(), Some(&b"data"[..]));
    }

    #[test]
    fn strict_rename_reverts_until_the_directory_is_synced() {
        let mut model = Model::new(SyncModel::Strict);
        let old = written_file(&mut model, ROOT, "target", b"old");
        model.fsync(old).expect("fsync old");
        let new = written_file(&mut model, ROOT, "target.partial", b"new");
        model.fsync(new).expect("fsync new");
        model.fsyncdir(ROOT).expect("fsync root");
        model.rename(ROOT, name("target.partial"), ROOT, name("target"), false).expect("rename");
        assert_eq!(contents(&model, &["target"]).as_deref(), Some(&b"new"[..]));
        let reverted = after_power_cut(&mut model.clone());
        assert_eq!(contents(&reverted, &["target"]).as_deref(), Some(&b"old"[..]));
        assert_eq!(contents(&reverted, &["target.partial"]).as_deref(), Some(&b"new"[..]));
        model.fsyncdir(ROOT).expect("fsync root after rename");
        let renamed = after_power_cut(&mut model);
        assert_eq!(contents(&renamed, &["target"]).as_deref(), Some(&b"new"[..]));
        assert_eq!(contents(&renamed, &["target.partial"]), None);
    }

    #[test]
    fn strict_a_new_directory_needs_its_parent_synced() {
        let mut model = Model::new(SyncModel::Strict);
        let dir = model.mkdir(ROOT, name("d"), 0o755).expect("mkdir").ino;
        let ino = written_file(&mut model, dir, "f", b"data");
        model.fsync(ino).expect("fsync file");
        model.fsyncdir(dir).expect("fsync d");
        let lost = after_power_cut(&mut model.clone());
        assert_eq!(contents(&lost, &["d", "f"]), None, "d itself was never made durable in the root");
        model.fsyncdir(ROOT).expect("fsync root");
        let kept = after_power_cut(&mut model);
        assert_eq!(contents(&kept, &["d", "f"]).as_deref(), Some(&b"data"[..]));
    }

    #[test]
    fn journal_any_sync_commits_names_but_not_other_files_bytes() {
        let mut model = Model::new(SyncModel::Journal);
        let dir = model.mkdir(ROOT, name("d"), 0o755).expect("mkdir").ino;
        let synced = written_file(&mut model, dir, "synced", b"kept");
        written_file(&mut model, ROOT, "unsynced", b"lost");
        model.fsync(synced).expect("fsync");
        let after = after_power_cut(&mut model);
        assert_eq!(contents(&after, &["d", "synced"]).as_deref(), Some(&b"kept"[..]));
        assert_eq!(contents(&after, &["unsynced"]).as_deref(), Some(&b""[..]), "name committed, bytes never synced");
    }

    #[test]
    fn unlinked_synced_files_come_back_until_the_directory_is_synced() {
        let mut model = Model::new(SyncModel::Strict);
        let ino = written_file(&mut model, ROOT, "f", b"data");
        model.fsync(ino).expect("fsync");
        model.fsyncdir(ROOT).expect("fsync root");
        model.unlink(ROOT, name("f")).expect("unlink");
        let back = after_power_cut(&mut model.clone());
        assert_eq!(contents(&back, &["f"]).as_deref(), Some(&b"data"[..]));
        model.fsyncdir(ROOT).expect("fsync root after unlink");
        assert!(model.durable.len() == 1, "the deleted file's durable bytes are collected");
        let gone = after_power_cut(&mut model);
        assert_eq!(contents(&gone, &["f"]), None);
    }

    #[test]
    fn load_and_store_keep_files_directories_and_hard_links() {
        let source = tempfile::tempdir().expect("source");
        fs::create_dir(source.path().join("d")).expect("mkdir");
        fs::write(source.path().join("d/f"), b"bytes").expect("write");
        fs::hard_link(source.path().join("d/f"), source.path().join("g")).expect("link");
        let mut model = Model::load(source.path(), SyncModel::Strict).expect("load");
        assert_eq!(model.lookup(ROOT, name("g")).expect("g").nlink, 2);
        let after = after_power_cut(&mut model);
        assert_eq!(contents(&after, &["d", "f"]).as_deref(), Some(&b"bytes"[..]));
        assert_eq!(after.lookup(ROOT, name("g")).expect("g").nlink, 2);
    }

    #[test]
    fn rename_checks_kinds_and_cycles() {
        let mut model = Model::new(SyncModel::Strict);
        let dir = model.mkdir(ROOT, name("d"), 0o755).expect("mkdir").ino;
        model.mkdir(dir, name("sub"), 0o755).expect("mkdir sub");
        written_file(&mut model, ROOT, "f", b"x");
        assert_eq!(model.rename(ROOT, name("d"), dir, name("inside"), false).err(), Some(Errno::EINVAL));
        assert_eq!(model.rename(ROOT, name("f"), ROOT, name("d"), false).err(), Some(Errno::EISDIR));
        assert_eq!(model.rename(ROOT, name("d"), ROOT, name("f"), false).err(), Some(Errno::ENOTDIR));
        assert_eq!(model.rename(ROOT, name("f"), dir, name("sub"), true).err(), Some(Errno::EEXIST));
        assert_eq!(model.rmdir(ROOT, name("d")).err(), Some(Errno::ENOTEMPTY));
        model.rename(ROOT, name("f"), dir, name("g"), false).expect("move file");
        assert_eq!(contents(&model, &["d", "g"]).as_deref(), Some(&b"x"[..]));
    }
}
