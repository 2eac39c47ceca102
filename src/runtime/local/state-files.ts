import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A local job's state on disk: retained checkpoints (`chk-<n>`) and savepoints
 * (`savepoint-*`), each complete once its `_metadata` is written.
 */

/** A folder's entries; none when it does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return [];
  }
}

/** The local path of a snapshot location Flink wrote (`file:/…`, `file:///…`, or a path). */
export function pathOf(location: string): string {
  return location.startsWith('file:') ? fileURLToPath(new URL(location.replace(/^file:\/*/, 'file:///'))) : location;
}

/** The bytes a snapshot's files hold, subfolders included. */
export async function sizeOf(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** The snapshot at `path` if it is complete (holds its `_metadata`). */
export async function completeSnapshot(path: string): Promise<string | undefined> {
  try {
    await stat(join(path, '_metadata'));
    return path;
  } catch {
    return undefined;
  }
}

/**
 * The newest complete snapshot among the retained checkpoints of `checkpointDirs`
 * (`<dir>/chk-<n>`) and the savepoints in `savepointDirs` (`<dir>/savepoint-*`): whichever
 * wrote its `_metadata` last.
 */
export async function latestSnapshot(checkpointDirs: readonly string[], savepointDirs: readonly string[]): Promise<string | undefined> {
  const candidates = await Promise.all(checkpointDirs.map((dir) => latestCheckpoint(dir)));
  for (const dir of savepointDirs) candidates.push(...(await listDir(dir)).map((name) => join(dir, name)));
  let newest: { path: string; at: number } | undefined;
  for (const path of candidates) {
    if (!path) continue;
    try {
      const at = (await stat(join(path, '_metadata'))).mtimeMs;
      if (!newest || at > newest.at) newest = { path, at };
    } catch {
      // not complete
    }
  }
  return newest?.path;
}

/** Deletes the state folders of every generation but `keep`. */
export async function removeOtherGenerations(stateRoot: string, keep: number): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(stateRoot);
  } catch {
    return;
  }
  for (const name of names) {
    if (/^g\d+$/.test(name) && name !== `g${keep}`) await rm(join(stateRoot, name), { recursive: true, force: true });
  }
}

/** The highest completed checkpoint (`chk-<n>` holding `_metadata`), if any. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const numbered = names
    .map((name) => /^chk-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => !!m)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  for (const match of numbered) {
    const candidate = join(dir, match[0]);
    try {
      await stat(join(candidate, '_metadata'));
      return candidate;
    } catch {
      // in progress when the process died
    }
  }
  return undefined;
}
