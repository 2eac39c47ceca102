import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Everything under the data folder is this user's alone: the embedded database (whose
 * WAL holds connection secrets in plain text), job specs, checkpoints, Kafka logs.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** Group and other bits: none may be set on anything in the data folder. */
const SHARED_BITS = 0o077;

/**
 * Makes every file and folder this process creates from now on owner-only, whatever
 * umask it was started with. Child processes inherit the umask, so the JVMs the gateway
 * spawns (Flink, Kafka) write owner-only files too. Idempotent.
 */
export function restrictUmask(): void {
  process.umask(process.umask() | SHARED_BITS);
}

/** Creates a folder (and its parents) owner-only; an existing one is tightened. */
export async function mkdirPrivate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // `mode` passes through the umask and leaves an existing folder as it was.
  await tightenEntry(dir);
}

/**
 * Walks `dir` once and clears group/other bits on every file and folder an older
 * version (or another umask) left readable. Symlinks are not followed: what they point
 * at is not ours to change. Returns how many entries it fixed. A missing `dir` is fine.
 */
export async function tightenTree(dir: string): Promise<number> {
  let fixed = 0;
  const visit = async (path: string): Promise<void> => {
    let isDir: boolean;
    try {
      const stats = await lstat(path);
      if (stats.isSymbolicLink()) return;
      isDir = stats.isDirectory();
      if (stats.mode & SHARED_BITS) {
        await chmod(path, stats.mode & 0o7777 & ~SHARED_BITS);
        fixed += 1;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // removed meanwhile
      throw error;
    }
    if (!isDir) return;
    let names: string[];
    try {
      names = await readdir(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) await visit(join(path, name));
  };
  await visit(dir);
  return fixed;
}

async function tightenEntry(path: string): Promise<void> {
  const stats = await lstat(path);
  if (!stats.isSymbolicLink() && stats.mode & SHARED_BITS) await chmod(path, stats.mode & 0o7777 & ~SHARED_BITS);
}

/**
 * Start-up: restricts the umask, then creates the data folder owner-only and tightens
 * what is already in it. Returns how many entries were fixed (for the log).
 */
export async function makeDataDirPrivate(dataDir: string): Promise<number> {
  restrictUmask();
  await mkdir(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  return tightenTree(dataDir);
}
