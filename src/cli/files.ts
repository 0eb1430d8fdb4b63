/**
 * Finding the files to process and writing them back safely.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync, chmodSync } from 'fs';
import { basename, dirname, join } from 'path';

/** The kinds of file ecr-ptc understands. */
export enum FileKind {
  YAML = 'yaml',
  DOCKERFILE = 'dockerfile',
}

/** Folders never descended into. */
const SKIPPED_DIRS = new Set(['.git', 'node_modules', 'cdk.out', '.terraform', 'vendor']);

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

/** A file to process, or a path that could not be used, with the reason. */
export interface FoundFile { readonly path: string; readonly kind?: FileKind; readonly problem?: string }

/**
 * The files under the given paths, in a stable order. A file named explicitly but of an unknown kind, or a path
 * that does not exist, is returned with its problem; inside folders, other files are passed over silently.
 */
export function findFiles(paths: string[]): FoundFile[] {
  const found: FoundFile[] = [];
  const seen = new Set<string>();
  const add = (file: FoundFile) => {
    if (!seen.has(file.path)) {
      seen.add(file.path);
      found.push(file);
    }
  };
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) {
          walk(path);
        }
      } else if (entry.isFile()) {
        const kind = kindOf(path);
        if (kind) {
          add({ path, kind });
        }
      }
    }
  };
  for (const path of paths) {
    let stat;
    try {
      stat = statSync(path);
    } catch {
      add({ path, problem: 'no such file or folder' });
      continue;
    }
    if (stat.isDirectory()) {
      walk(path);
    } else {
      const kind = kindOf(path);
      add(kind ? { path, kind } : { path, problem: 'not a YAML file (.yaml, .yml) or a Dockerfile, left alone' });
    }
  }
  return found;
}

/**
 * Replaces a file's content atomically: the new content goes to a temporary file in the same folder, is flushed
 * to disk, takes the original's permissions, and is renamed over the original. A crash leaves either the old
 * file or the new one, never half of one.
 */
export function writeAtomically(path: string, content: string): void {
  const temp = join(dirname(path), `.${basename(path)}.ecr-ptc-${process.pid}.tmp`);
  const mode = statSync(path).mode;
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    chmodSync(temp, mode);
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
}
