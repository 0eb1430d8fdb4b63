/**
 * Finding the files to process: the paths given, folders walked (without following symbolic links unless asked),
 * and the leftover temporary files of an interrupted run. Nothing here reads a file's content or prints.
 */
import { Stats, lstatSync, readdirSync, realpathSync, statSync, unlinkSync } from 'fs';
import { basename, dirname, join } from 'path';
import { FileError, FoundFile, LOCK_NAME, SKIPPED_DIRS, TEMP_FILE, kindOf, reasonOf, tempStem, typeName } from './files';


/** Something passed over on purpose while walking a tree, listed in the report. */
export interface Skipped { readonly path: string; readonly reason: string }

/** What a walk found. */
export interface Walk {
  readonly files: FoundFile[];
  readonly skipped: Skipped[];
  /** Temporary files left by an interrupted run. */
  readonly leftovers: string[];
}

export interface WalkOptions {
  /** Follow symbolic links met inside folders (links named on the command line are always followed). */
  readonly followSymlinks?: boolean;
}


/**
 * The files under the given paths, in a stable order. A file named explicitly but of an unknown kind, or a path
 * that cannot be used, is returned with its problem; inside folders, files of other kinds are passed over
 * silently, and symbolic links (unless followed) and the folders of `SKIPPED_DIRS` are listed as skipped.
 */
export function findFiles(paths: string[], options: WalkOptions = {}): Walk {
  const files: FoundFile[] = [];
  const skipped: Skipped[] = [];
  const leftovers: string[] = [];
  const seen = new Set<string>();
  const walkedDirs = new Set<string>();
  const listings = new Map<string, string[]>();
  const add = (file: FoundFile, identity: string = file.path) => {
    if (!seen.has(identity)) {
      seen.add(identity);
      files.push(file);
    }
  };
  /** A symlink met inside a folder, with --follow-symlinks. */
  const follow = (path: string) => {
    let stat: Stats;
    let real: string;
    try {
      stat = statSync(path);
      real = realpathSync(path);
    } catch (e) {
      add({ path, problem: `symbolic link that cannot be followed: ${reasonOf(e)}` });
      return;
    }
    if (stat.isDirectory()) {
      walk(path, real);
    } else if (stat.isFile()) {
      const kind = kindOf(path) ?? kindOf(real);
      if (kind) {
        add({ path, kind, named: true }, real);
      }
    } else if (kindOf(path)) {
      add({ path, problem: `${typeName(stat)}, not a regular file: refused` });
    }
  };
  const walk = (dir: string, real?: string) => {
    let identity = real;
    if (identity === undefined) {
      try {
        identity = realpathSync(dir);
      } catch (e) {
        add({ path: dir, problem: `cannot open folder: ${reasonOf(e)}` });
        return;
      }
    }
    if (walkedDirs.has(identity)) {
      return; // a symlink loop, or the same folder named twice
    }
    walkedDirs.add(identity);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      add({ path: dir, problem: `cannot list folder: ${reasonOf(e)}` });
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (SKIPPED_DIRS.has(entry.name)) {
          skipped.push({ path, reason: 'folder not searched (one of ' + [...SKIPPED_DIRS].join(', ') + ')' });
        } else {
          walk(path);
        }
      } else if (entry.isSymbolicLink()) {
        if (options.followSymlinks) {
          follow(path);
        } else {
          skipped.push({ path, reason: 'symbolic link, not followed (pass --follow-symlinks to follow links inside folders)' });
        }
      } else if (entry.isFile()) {
        if (TEMP_FILE.test(entry.name)) {
          leftovers.push(path);
        } else {
          const kind = kindOf(path);
          if (kind) {
            add({ path, kind }, join(identity, entry.name));
          }
        }
      } else if (kindOf(path) && entry.name !== LOCK_NAME) {
        add({ path, problem: 'not a regular file (a FIFO, socket or device): refused' });
      }
    }
  };
  for (const path of paths) {
    let stat: Stats;
    try {
      stat = statSync(path);
    } catch (e) {
      let dangling = false;
      try {
        dangling = lstatSync(path).isSymbolicLink();
      } catch {
        // not there at all
      }
      add({ path, problem: dangling ? `symbolic link to nothing: ${reasonOf(e)}` : reasonOf(e) });
      continue;
    }
    if (stat.isDirectory()) {
      walk(path);
    } else if (stat.isFile()) {
      let real = path;
      try {
        real = realpathSync(path);
      } catch {
        // reported when read
      }
      const kind = kindOf(path) ?? kindOf(real);
      add(kind ? { path, kind, named: true } : { path, problem: 'not a YAML file (.yaml, .yml) or a Dockerfile, left alone' }, real);
      leftovers.push(...leftoversOf(real, listings));
    } else {
      add({ path, problem: `${typeName(stat)}, not a regular file: refused` });
    }
  }
  return { files, skipped, leftovers: [...new Set(leftovers)] };
}

/** Leftover temporary files of one file, beside it (each folder listed once, however many files are named in it). */
function leftoversOf(file: string, listings: Map<string, string[]>): string[] {
  const dir = dirname(file);
  let temps = listings.get(dir);
  if (temps === undefined) {
    try {
      temps = readdirSync(dir, { withFileTypes: true }).filter(e => e.isFile() && TEMP_FILE.test(e.name)).map(e => e.name);
    } catch {
      temps = [];
    }
    listings.set(dir, temps);
  }
  const stems = [`${tempStem(basename(file))}.ecr-ptc-`, `.${basename(file)}.ecr-ptc-`];
  return temps.filter(name => stems.some(stem => name.startsWith(stem))).map(name => join(dir, name));
}

/** Removes a leftover temporary file (never through a symlink); false when it is not one to remove. */
export function removeLeftover(path: string): void {
  if (!lstatSync(path).isFile()) {
    throw new FileError('not a regular file, left alone');
  }
  unlinkSync(path);
}
