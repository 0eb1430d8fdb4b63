/**
 * Reading the files to process and writing them back without ever losing a byte; the kinds of file, the names
 * ecr-ptc gives its own files, and the errors of the filesystem. Finding the files is in walk.ts, the run's lock
 * files in locks.ts.
 *
 * Every filesystem problem becomes a `FileError` with a short reason (`permission denied (EACCES)`), reported
 * against its file; nothing here prints, and nothing here lets a stack trace reach the user.
 */
/* eslint-disable no-bitwise */ // open(2) flags and file mode bits are bit fields
import { randomBytes } from 'crypto';
import {
  Stats, accessSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, openSync, readFileSync,
  realpathSync, renameSync, unlinkSync, writeSync,
} from 'fs';
import { basename, dirname, join } from 'path';

/** The kinds of file ecr-ptc understands. */
export enum FileKind {
  YAML = 'yaml',
  DOCKERFILE = 'dockerfile',
}

/** A file to process, or a path that could not be used, with the reason. */
export interface FoundFile {
  readonly path: string;
  readonly kind?: FileKind;
  readonly problem?: string;
  /** Named on the command line (a symlink is then followed to its target). */
  readonly named?: boolean;
}

/** Folders never descended into; each one met is listed in the report. */
export const SKIPPED_DIRS: ReadonlySet<string> = new Set(['.git', 'node_modules', 'cdk.out', '.terraform', 'vendor']);

/** The lock file a writing run holds in every folder it may write to. */
export const LOCK_NAME = '.ecr-ptc.lock';

/**
 * Temporary files of ecr-ptc: `.<name>.ecr-ptc-<16 random hex>.tmp`, and `.<name>.ecr-ptc-<pid>.tmp` from
 * versions before 0.x that named them by process id.
 */
export const TEMP_FILE = /^\..*\.ecr-ptc-(?:[0-9a-f]{16}|\d+)\.tmp$/;

/** A problem with one file or folder, with a reason fit to print after `path: `. */
export class FileError extends Error {}

/** The reason to print for a filesystem error: `permission denied (EACCES)`; never a stack trace. */
export function reasonOf(e: unknown): string {
  if (e instanceof FileError) {
    return e.message;
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string') {
    return `${ERRNO_TEXT[code] ?? 'error'} (${code})`;
  }
  return e instanceof Error ? e.message : String(e);
}

const ERRNO_TEXT: { readonly [code: string]: string | undefined } = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a path component is not a folder',
  EISDIR: 'is a folder',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EROFS: 'read-only file system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links, or a symbolic link where none may be',
  EIO: 'input/output error',
  EBUSY: 'resource busy',
  ENXIO: 'no such device or address (a socket or an unconnected FIFO)',
  EMFILE: 'too many open files',
  EXDEV: 'cross-device link',
  ERR_FS_FILE_TOO_LARGE: 'file too large to read',
};

/** The kind of a file, from its name, or undefined for files ecr-ptc does not read. */
export function kindOf(path: string): FileKind | undefined {
  const name = basename(path);
  if (/\.(ya?ml)$/i.test(name)) {
    return FileKind.YAML;
  }
  if (/^(Dockerfile|Containerfile)(\..+)?$/.test(name) || /\.(Dockerfile|Containerfile)$/i.test(name)) {
    return FileKind.DOCKERFILE;
  }
  return undefined;
}

/** `.` plus at most 100 characters of the name, so the temporary name stays within NAME_MAX (255). */
export function tempStem(base: string): string {
  return `.${base.slice(0, 100)}`;
}

export function typeName(stat: Stats): string {
  if (stat.isFIFO()) {
    return 'a FIFO';
  }
  if (stat.isSocket()) {
    return 'a socket';
  }
  if (stat.isCharacterDevice() || stat.isBlockDevice()) {
    return 'a device';
  }
  if (stat.isDirectory()) {
    return 'a folder';
  }
  return 'not a regular file';
}

/** A file as read: its bytes and what it was when they were read. */
export interface ReadFile {
  readonly path: string;
  /** The file written to: the target of a symlink named on the command line. */
  readonly realPath: string;
  readonly bytes: Buffer;
  readonly stat: Stats;
}

/**
 * Reads a regular file. Never waits on a FIFO or device: the file is opened without blocking and refused when it
 * is not a regular file. A file met inside a folder is opened without following a symlink put in its place.
 */
export function readRegularFile(file: FoundFile): ReadFile {
  const realPath = file.named ? realpathSync(file.path) : file.path;
  const fd = openSync(realPath, constants.O_RDONLY | constants.O_NONBLOCK | (file.named ? 0 : constants.O_NOFOLLOW));
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new FileError(`${typeName(stat)}, not a regular file: refused`);
    }
    return { path: file.path, realPath, bytes: readFileSync(fd), stat };
  } finally {
    closeSync(fd);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The text of a file that is valid UTF-8 (a byte order mark is kept as part of the text, so it is written back
 * as it was). Anything else is refused, never re-encoded.
 */
export function decodeText(bytes: Buffer): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new FileError('UTF-16 (or UTF-32) text, refused: ecr-ptc reads and writes UTF-8 only, so it does not re-encode '
      + 'the file (convert it first, for example with iconv -f UTF-16 -t UTF-8)');
  }
  if (bytes.includes(0)) {
    throw new FileError('has NUL bytes (UTF-16 without a byte order mark, or binary), refused: ecr-ptc reads UTF-8 text only');
  }
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new FileError('not valid UTF-8, refused: ecr-ptc rewrites UTF-8 text only, and never re-encodes a file');
  }
}

/** Whether two stats describe the same file in the same state. */
function unchanged(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/**
 * Replaces a file's content so that it is never lost:
 * - the new content goes to a temporary file created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, random name,
 *   mode 0600) in the file's own folder;
 * - every byte is written (a short write is an error), owner, group and mode are copied, and it is fsynced;
 * - only then is it renamed over the file, after checking that nobody changed the file since it was read.
 * Any failure removes the temporary file and leaves the original byte-identical. A hard-linked or read-only
 * file is refused rather than split or rewritten behind the user's back.
 */
export function replaceFile(read: ReadFile, content: Buffer): void {
  const path = read.realPath;
  const before = lstatSync(path);
  if (!before.isFile()) {
    throw new FileError('replaced by something other than a regular file while ecr-ptc ran; left alone');
  }
  if (!unchanged(before, read.stat)) {
    throw new FileError('changed by another program while ecr-ptc ran; left as it is now');
  }
  if (before.nlink > 1) {
    throw new FileError(`has ${before.nlink} hard links; replacing it would split them, so it is left alone (rewrite a copy, or remove the other links)`);
  }
  if (isReadOnly(path, before)) {
    throw new FileError(`read-only (mode ${(before.mode & 0o777).toString(8).padStart(4, '0')}), not rewritten; make it writable to rewrite it`);
  }
  const temp = join(dirname(path), `${tempStem(basename(path))}.ecr-ptc-${randomBytes(8).toString('hex')}.tmp`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let open = true;
  try {
    let offset = 0;
    while (offset < content.length) {
      const written = writeSync(fd, content, offset, content.length - offset);
      if (written <= 0) {
        throw new FileError(`short write: ${offset} of ${content.length} bytes written`);
      }
      offset += written;
    }
    keepOwner(fd, before);
    fchmodSync(fd, before.mode & 0o7777);
    fsyncSync(fd);
    open = false;
    closeSync(fd);
    const now = lstatSync(path);
    if (!unchanged(now, read.stat)) {
      throw new FileError('changed by another program while ecr-ptc ran; left as it is now');
    }
    renameSync(temp, path);
  } catch (e) {
    if (open) {
      try {
        closeSync(fd);
      } catch {
        // already failing
      }
    }
    try {
      unlinkSync(temp);
    } catch {
      // renamed, or never there
    }
    throw e;
  }
}

function isReadOnly(path: string, stat: Stats): boolean {
  if ((stat.mode & 0o200) === 0) {
    return true; // not writable by its owner: root could write it, but the user said not to
  }
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Gives the temporary file the original's owner and group; refuses the write where that is not allowed. */
function keepOwner(fd: number, stat: Stats): void {
  const mine = fstatSync(fd);
  if (mine.uid === stat.uid && mine.gid === stat.gid) {
    return;
  }
  try {
    fchownSync(fd, stat.uid, stat.gid);
  } catch (e) {
    throw new FileError(`cannot keep its owner and group ${stat.uid}:${stat.gid} (${reasonOf(e)}), so it is not rewritten; `
      + 'run ecr-ptc as its owner, or as root');
  }
}

/** Flushes folders' entries (the renames) to disk; best effort, as some filesystems refuse fsync on folders. */
export function syncFolders(dirs: Iterable<string>): void {
  for (const dir of dirs) {
    try {
      const fd = openSync(dir, constants.O_RDONLY);
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      // EINVAL/EBADF on filesystems without folder fsync
    }
  }
}
