/**
 * The lock files of a writing run: one in every folder it may write to, so two runs never rewrite the same file;
 * a lock left by a dead run is taken over.
 */
/* eslint-disable no-bitwise */ // open(2) flags are bit fields
import { closeSync, constants, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'fs';
import { hostname } from 'os';
import { join } from 'path';
import { LOCK_NAME } from './files';

/** The lock files of one run, one per folder it may write to. */
export class Locks {
  private readonly held: string[] = [];
  /** Stale locks of dead runs that were taken over. */
  public readonly staleRemoved: string[] = [];

  /**
   * Takes the lock of every folder, in a fixed order, before anything is written. Returns the conflict when
   * another live run holds one (then no lock is kept and nothing may be written). A folder where no lock file
   * can be created (read-only, no permission) is passed over: nothing can be written there either, and each
   * of its files reports why.
   */
  public acquire(dirs: Iterable<string>): string | undefined {
    for (const dir of [...new Set(dirs)].sort()) {
      const conflict = this.acquireOne(dir);
      if (conflict) {
        this.release();
        return conflict;
      }
    }
    return undefined;
  }

  public release(): void {
    for (const lock of this.held.splice(0)) {
      try {
        unlinkSync(lock);
      } catch {
        // already gone
      }
    }
  }

  private acquireOne(dir: string): string | undefined {
    const lock = join(dir, LOCK_NAME);
    const owner = JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, owner);
        } finally {
          closeSync(fd);
        }
        this.held.push(lock);
        return undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          return undefined; // cannot write in this folder at all: its files report it
        }
      }
      const holder = readLock(lock);
      // a run of this host that no longer runs, or a lock left empty by a run killed between creating and
      // writing it (older than a minute)
      if ((holder && holder.host === hostname() && !alive(holder.pid)) || (!holder && lockAgeMs(lock) > 60_000)) {
        try {
          unlinkSync(lock);
          this.staleRemoved.push(lock);
        } catch {
          // someone else took it over first
        }
        continue;
      }
      return `another ecr-ptc run (${holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.started}` : 'unknown owner'}) `
        + `is writing to ${dir}: nothing was written. Wait for it to finish, or delete ${lock} if no ecr-ptc is running.`;
    }
    return `cannot take the lock ${lock}: nothing was written`;
  }
}

function readLock(lock: string): { pid: number; host: string; started: string } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(lock, 'utf-8'));
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function lockAgeMs(lock: string): number {
  try {
    return Date.now() - lstatSync(lock).mtimeMs;
  } catch {
    return 0;
  }
}

/** Whether a process of this id runs (EPERM: it runs as another user). Also used by the test setup for stale run folders. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
