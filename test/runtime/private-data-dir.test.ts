import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/platform/net.js';
import { latestCheckpoint } from '../../src/runtime/local/state-files.js';
import { processesOfScope } from '../../src/runtime/local/processes.js';
import { decodeId } from '../../src/graphql/global-id.js';
import { startExternalKafka, type ExternalKafka } from '../helpers/kafka.js';
import { waitFor } from '../helpers/wait-for.js';
import { postGraphql } from '../helpers/server.js';

/**
 * The real gateway (`src/main.ts`) started with umask 000, as a careless service unit
 * might: after a run with a connection secret, with Flink and Kafka writing their files,
 * nothing under the data folder may be readable, writable or searchable by group or others.
 */
const SLOW = 420_000;
let dataDir: string;
let port: number;
let gateway: ChildProcess | undefined;
let key = '';
/** The sink's target: a Kafka of the user's own, reached with a password (the secret). */
let external: ExternalKafka | undefined;

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

const gql = (query: string, variables: Record<string, unknown> = {}) => postGraphql(port, key, query, variables);

/** Every entry under `dir` (symlinks not followed) with its permission bits. */
async function walk(dir: string): Promise<{ path: string; mode: number; isDir: boolean }[]> {
  const found: { path: string; mode: number; isDir: boolean }[] = [];
  const visit = async (path: string) => {
    let stats;
    try {
      stats = await lstat(path);
    } catch {
      return; // removed meanwhile (a running JVM rotates files)
    }
    if (stats.isSymbolicLink()) return;
    found.push({ path, mode: stats.mode & 0o777, isDir: stats.isDirectory() });
    if (stats.isDirectory()) for (const name of await readdir(path).catch(() => [])) await visit(join(path, name));
  };
  await visit(dir);
  return found;
}

const shared = (entries: { path: string; mode: number }[]) =>
  entries.filter((e) => e.mode & 0o077).map((e) => `${e.mode.toString(8).padStart(4, '0')} ${e.path.slice(dataDir.length)}`);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'weir-private-'));
  port = await freePort();
  // `exec`, so the gateway is this child: SIGTERM reaches it, not a shell.
  gateway = spawn('sh', ['-c', `umask 000; exec "${process.execPath}" --import tsx src/main.ts`], {
    env: { ...process.env, PORT: String(port), WEIR_DATA_DIR: dataDir, LOG_LEVEL: 'warn', WEIR_RECONCILE_INTERVAL_MS: '500', WEIR_CHECKPOINT_INTERVAL_MS: '1000' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor('the gateway to be ready', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    return response?.ok ? true : undefined;
  }, 90_000);
}, SLOW);

afterAll(async () => {
  await external?.close();
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    gateway.kill('SIGTERM');
    await exited(gateway);
  }
  await rm(dataDir, { recursive: true, force: true });
}, SLOW);

describe('the data folder of a gateway started with umask 000', () => {
  it('holds nothing readable by group or others after a run with a connection secret', async () => {
    key = (await gql('mutation { signUp(input: { name: "private" }) { secret } }')).signUp.secret;
    const streamId = (await gql('mutation { createStream(input: { name: "p_ids", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }'))
      .createStream.id;
    const create = 'mutation ($input: CreateConnectionInput!) { createConnection(input: $input) { id secretPropertyKeys } }';
    const gen = (await gql(create, { input: { name: 'p_gen', connector: 'datagen', type: 'SOURCE', streamId, properties: { 'rows-per-second': 20 } } }))
      .createConnection.id;
    await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: gen });
    const running = (id: string) =>
      waitFor(`connection ${id} RUNNING`, async () => {
        const c = (await gql('query ($id: ID!) { connection(id: $id) { actualState actualReason } }', { id })).connection;
        if (c.actualState === 'FAILED') throw new Error(`FAILED: ${c.actualReason}`);
        return c.actualState === 'RUNNING' ? true : undefined;
      }, 300_000);
    await running(gen);

    // A sink to the user's own Kafka with a password: stored, written into the job's spec
    // file and handed to Flink.
    external = await startExternalKafka();
    await external.storage.ensureTopic('private-out');
    const secret = external.endpoint.admin.password;
    const sink = await gql(create, {
      input: { name: 'p_out', connector: 'kafka', type: 'SINK', streamId, properties: { topic: 'private-out', ...external.connectionProperties } },
    });
    expect(sink.createConnection.secretPropertyKeys).toEqual(['sasl.password']);
    await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: sink.createConnection.id });
    await running(sink.createConnection.id);
    const genDir = join(dataDir, 'local', 'jobs', decodeId(gen, 'Connection'));
    await waitFor('a completed checkpoint', async () => latestCheckpoint(join(genDir, 'state', 'g1', 'checkpoints', decodeId(gen, 'Connection').replaceAll('-', ''))), 90_000);

    const whileRunning = await walk(dataDir);
    expect(whileRunning.length).toBeGreaterThan(200); // PGlite, Kafka segments, job folders, checkpoints
    expect(shared(whileRunning)).toEqual([]);

    gateway!.kill('SIGTERM');
    await exited(gateway!);
    expect(await processesOfScope(join(dataDir, 'local'))).toEqual([]);
    const afterStop = await walk(dataDir);
    expect(shared(afterStop)).toEqual([]);
    // The test covers what it claims: the secret is on disk (WAL, spec file), owner-only.
    const holding: string[] = [];
    for (const entry of afterStop) {
      if (!entry.isDir && (await readFile(entry.path).catch(() => Buffer.alloc(0))).includes(secret)) holding.push(entry.path);
    }
    expect(holding.length).toBeGreaterThan(0);
    for (const dirName of ['pgdata', join('local', 'kafka'), join('local', 'jobs')]) {
      expect(afterStop.some((e) => e.path.startsWith(join(dataDir, dirName)) && !e.isDir), dirName).toBe(true);
    }
  }, SLOW);
});
