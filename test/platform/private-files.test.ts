import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirPrivate, restrictUmask, tightenTree } from '../../src/platform/private-files.js';

let root: string;
let umaskBefore: number;
const mode = async (path: string) => (await stat(path)).mode & 0o777;

beforeEach(async () => {
  umaskBefore = process.umask();
  root = await mkdtemp(join(tmpdir(), 'weir-private-'));
});
afterEach(async () => {
  process.umask(umaskBefore);
  await rm(root, { recursive: true, force: true });
});

describe('private files', () => {
  it('tightens files left 0666/0755 and folders left 0777 to owner-only, and counts them', async () => {
    process.umask(0);
    await mkdir(join(root, 'pgdata', 'pg_wal'), { recursive: true, mode: 0o777 });
    await writeFile(join(root, 'pgdata', 'pg_wal', '000000010000000000000001'), 'password=hunter2', { mode: 0o666 });
    await writeFile(join(root, 'pgdata', 'PG_VERSION'), '17', { mode: 0o644 });
    await writeFile(join(root, 'runner.sh'), '#!/bin/sh', { mode: 0o755 });
    await writeFile(join(root, 'already-private'), 'x', { mode: 0o600 });
    // Folders are created 0777 (umask 0); the root from mkdtemp is 0700 already.
    const outside = join(root, '..', `weir-outside-${process.pid}`);
    await writeFile(outside, 'not ours', { mode: 0o644 });
    await symlink(outside, join(root, 'link'));
    try {
      expect(await tightenTree(root)).toBe(5); // pgdata, pg_wal, the segment, PG_VERSION, runner.sh

      expect(await mode(join(root, 'pgdata'))).toBe(0o700);
      expect(await mode(join(root, 'pgdata', 'pg_wal'))).toBe(0o700);
      expect(await mode(join(root, 'pgdata', 'pg_wal', '000000010000000000000001'))).toBe(0o600);
      expect(await mode(join(root, 'pgdata', 'PG_VERSION'))).toBe(0o600);
      expect(await mode(join(root, 'runner.sh'))).toBe(0o700); // the owner keeps its execute bit
      expect(await mode(join(root, 'already-private'))).toBe(0o600);
      expect(await mode(outside)).toBe(0o644); // a symlink's target is left alone
      expect(await tightenTree(root)).toBe(0); // once is enough
    } finally {
      await rm(outside, { force: true });
    }
  });

  it('a missing folder has nothing to tighten', async () => {
    expect(await tightenTree(join(root, 'absent'))).toBe(0);
  });

  it('creates folders owner-only whatever the umask, and tightens an existing one', async () => {
    process.umask(0);
    await mkdirPrivate(join(root, 'a', 'b'));
    expect(await mode(join(root, 'a'))).toBe(0o700);
    expect(await mode(join(root, 'a', 'b'))).toBe(0o700);
    await chmod(join(root, 'a', 'b'), 0o755);
    await mkdirPrivate(join(root, 'a', 'b'));
    expect(await mode(join(root, 'a', 'b'))).toBe(0o700);
  });

  it('restrictUmask takes group and other bits away and keeps what was already masked', async () => {
    process.umask(0o002);
    restrictUmask();
    expect(process.umask()).toBe(0o077);
    process.umask(0o277);
    restrictUmask();
    expect(process.umask()).toBe(0o277);
    await writeFile(join(root, 'new'), 'x', { mode: 0o666 });
    expect(await mode(join(root, 'new'))).toBe(0o400);
  });
});
