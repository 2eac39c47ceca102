import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../platform/private-files.js';
import { pollUntil } from '../../platform/poll.js';
import { SECOND } from '../../platform/time.js';

/**
 * Processes the local runtime starts outlive a gateway that is killed: they run
 * detached, log to a file, and carry a marker argument (`-Dweir.process=<marker>`) so a
 * restarted gateway can find and adopt them by scanning /proc — a pid file alone could
 * name a recycled pid.
 */
export interface SpawnOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Record<string, string>;
  readonly cwd?: string;
  /** stderr, and stdout too unless `stdoutFile` is given. */
  readonly logFile: string;
  readonly stdoutFile?: string;
}

/** Names a data folder in markers: the processes of one gateway's folder share it. */
export function scopeOf(dataDir: string): string {
  return createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 16);
}

/** Every live process started for the local data folder `dataDir` (broker and jobs). */
export async function processesOfScope(dataDir: string): Promise<RunningProcess[]> {
  const scope = scopeOf(dataDir);
  return (await findMarkedProcesses('')).filter(
    (p) => p.marker === `weir-broker:${scope}` || p.marker.startsWith(`job:${scope}:`),
  );
}

export function markerArg(marker: string): string {
  return `-Dweir.process=${marker}`;
}

export async function spawnDetached(options: SpawnOptions): Promise<number> {
  await mkdir(dirname(options.logFile), { recursive: true, mode: PRIVATE_DIR_MODE });
  // Logs may quote job SQL and connector errors: owner-only, like everything in the data folder.
  const log = openSync(options.logFile, 'a', PRIVATE_FILE_MODE);
  const out = options.stdoutFile ? openSync(options.stdoutFile, 'a', PRIVATE_FILE_MODE) : log;
  try {
    const child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      detached: true,
      stdio: ['ignore', out, log],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
    return pid;
  } finally {
    closeSync(log);
    if (out !== log) closeSync(out);
  }
}

export interface RunningProcess {
  readonly pid: number;
  readonly marker: string;
}

/** Live processes whose command line carries a Weir marker starting with `prefix`. */
export async function findMarkedProcesses(prefix: string): Promise<RunningProcess[]> {
  const found: RunningProcess[] = [];
  const needle = markerArg(prefix);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    for (const arg of cmdline.split('\0')) {
      if (arg.startsWith(needle)) {
        if (await isZombie(Number(entry))) break;
        found.push({ pid: Number(entry), marker: arg.slice('-Dweir.process='.length) });
        break;
      }
    }
  }
  return found;
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process has exited: gone, or a zombie its parent has not reaped yet. */
export async function hasExited(pid: number): Promise<boolean> {
  return !isAlive(pid) || (await isZombie(pid));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(pid: number, graceMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  const exited = async () => !isAlive(pid) || (await isZombie(pid)) || undefined;
  const poll = { intervalMs: { first: 10, max: 200 } };
  signal('SIGTERM');
  const stillRunning = new Error(`process ${pid} is still running`);
  const gone = await pollUntil(exited, { ...poll, timeoutMs: graceMs, timeoutError: () => stillRunning }).catch((error: unknown) => {
    if (error !== stillRunning) throw error;
    return false;
  });
  if (gone) return;
  signal('SIGKILL');
  await pollUntil(exited, { ...poll, timeoutMs: 10 * SECOND, timeoutError: () => new Error(`process ${pid} did not exit after SIGKILL`) });
}

/** Resident memory of a process in bytes (VmRSS), or undefined when it is gone. */
export async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
