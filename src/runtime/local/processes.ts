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

const MARKER_ARG = '-Dweir.process=';

export function markerArg(marker: string): string {
  return `${MARKER_ARG}${marker}`;
}

/**
 * Starts a detached process; its arguments must carry a marker (`markerArg`), which is
 * how every later look at it tells it from a process that got its pid after it exited.
 */
export async function spawnDetached(options: SpawnOptions): Promise<RunningProcess> {
  const marker = options.args.find((arg) => arg.startsWith(MARKER_ARG))?.slice(MARKER_ARG.length);
  if (!marker) throw new Error(`spawnDetached: ${options.command} has no marker argument (${MARKER_ARG}…)`);
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
    return { pid, marker };
  } finally {
    closeSync(log);
    if (out !== log) closeSync(out);
  }
}

export interface RunningProcess {
  readonly pid: number;
  readonly marker: string;
}

/**
 * Live processes whose command line carries a Weir marker starting with `prefix` (a
 * zombie's command line is empty, so an exited process is never among them).
 */
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
        found.push({ pid: Number(entry), marker: arg.slice(MARKER_ARG.length) });
        break;
      }
    }
  }
  return found;
}

/**
 * Whether the process still runs. Its pid alone cannot tell: pids are reused, and fast
 * on a machine with pid_max 32768 where every JVM thread takes one. The marker can — a
 * process that got the pid since does not carry it, and neither does a zombie (its
 * command line is empty).
 */
export async function isRunning(process: RunningProcess): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${process.pid}/cmdline`, 'utf8');
    return cmdline.split('\0').includes(markerArg(process.marker));
  } catch {
    return false; // gone
  }
}

export async function hasExited(process: RunningProcess): Promise<boolean> {
  return !(await isRunning(process));
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Each signal
 * goes only to a pid that still carries the marker, never to a stranger that got it.
 */
export async function stopProcess(target: RunningProcess, graceMs: number): Promise<void> {
  const signal = async (sig: NodeJS.Signals) => {
    if (!(await isRunning(target))) return;
    try {
      process.kill(target.pid, sig);
    } catch {
      /* already gone */
    }
  };
  const exited = async () => (await hasExited(target)) || undefined;
  const poll = { intervalMs: { first: 10, max: 200 } };
  await signal('SIGTERM');
  const stillRunning = new Error(`process ${target.pid} is still running`);
  const gone = await pollUntil(exited, { ...poll, timeoutMs: graceMs, timeoutError: () => stillRunning }).catch((error: unknown) => {
    if (error !== stillRunning) throw error;
    return false;
  });
  if (gone) return;
  await signal('SIGKILL');
  await pollUntil(exited, {
    ...poll,
    timeoutMs: 10 * SECOND,
    timeoutError: () => new Error(`process ${target.pid} did not exit after SIGKILL`),
  });
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
