import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { findMarkedProcesses, hasExited, isRunning, markerArg, spawnDetached, stopProcess } from '../../../src/runtime/local/processes.js';

/**
 * Detached processes are told apart by their marker, not their pid: a pid is reused as
 * soon as its process is reaped (pid_max is 32768 here, and every JVM thread takes one).
 * `sh -c '<script>' <marker>` carries the marker as its $0, so it shows on the command line.
 */
describe('detached processes', () => {
  let dir: string;
  const strangers: ChildProcess[] = [];
  const marker = `weir-test:${process.pid}:${Date.now()}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weir-processes-'));
  });
  afterEach(async () => {
    for (const stranger of strangers.splice(0)) stranger.kill('SIGKILL');
    for (const left of await findMarkedProcesses(marker)) process.kill(left.pid, 'SIGKILL');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const spawnMarked = (script: string) =>
    spawnDetached({ command: 'sh', args: ['-c', script, markerArg(marker)], logFile: join(dir, 'sh.log') });

  it('refuses to start a process without a marker: nothing could find or stop it safely', async () => {
    await expect(spawnDetached({ command: 'sleep', args: ['60'], logFile: join(dir, 'sleep.log') })).rejects.toThrow(/no marker argument/);
  });

  it('finds a marked process, stops it with SIGTERM, and knows it exited', async () => {
    const started = await spawnMarked('sleep 60');
    expect(started.marker).toBe(marker);
    expect(await isRunning(started)).toBe(true);
    expect(await findMarkedProcesses(marker)).toEqual([started]);

    await stopProcess(started, 10_000);
    expect(await hasExited(started)).toBe(true);
    expect(await findMarkedProcesses(marker)).toEqual([]);
  });

  it('kills a process that ignores SIGTERM once the grace is over', async () => {
    const stubborn = await spawnMarked("trap '' TERM; while :; do sleep 0.1; done");
    await stopProcess(stubborn, 200);
    expect(await hasExited(stubborn)).toBe(true);
  });

  it('never signals a process that got the pid of one that exited', async () => {
    // A process without the marker at a remembered pid: what a reused pid looks like.
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    strangers.push(stranger);
    await once(stranger, 'spawn');
    const remembered = { pid: stranger.pid!, marker };

    expect(await isRunning(remembered)).toBe(false);
    await stopProcess(remembered, 0);
    expect(stranger.exitCode).toBeNull();
    expect(stranger.signalCode).toBeNull();
    process.kill(stranger.pid!, 0); // still there: throws if it is not
  });
});
