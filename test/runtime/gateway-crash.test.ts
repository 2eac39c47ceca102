import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeId } from '../../src/graphql/global-id.js';
import { freePort } from '../../src/platform/net.js';
import { processesOfScope } from '../../src/runtime/local/processes.js';
import { waitFor } from '../helpers/wait-for.js';
import { postGraphql } from '../helpers/server.js';

/**
 * The real gateway process (`src/main.ts`, as `npm start` runs it) with the embedded
 * database and the local runtime, killed with SIGKILL in the middle of an activation
 * and started again on the same data folder.
 */
const SLOW = 360_000;
let dataDir: string;
let port: number;
let gateway: ChildProcess | undefined;
let key: string;

async function startGateway(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PORT: String(port), WEIR_DATA_DIR: dataDir, LOG_LEVEL: 'warn', WEIR_RECONCILE_INTERVAL_MS: '500' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitFor('the gateway to be ready', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    return response?.ok ? true : undefined;
  }, 90_000);
  return child;
}

const gql = (query: string, variables: Record<string, unknown> = {}) => postGraphql(port, key, query, variables);

/** This gateway's job processes (not those of tests running beside this one). */
const jobProcesses = async () => (await processesOfScope(join(dataDir, 'local'))).filter((p) => p.marker.startsWith('job:'));

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'weir-crash-'));
  port = await freePort();
  gateway = await startGateway();
}, SLOW);

afterAll(async () => {
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGTERM');
    await exited(gateway);
  }
  await rm(dataDir, { recursive: true, force: true });
}, SLOW);

describe('a gateway killed during an activation', () => {
  it('comes back with exactly one process per active job and none for inactive ones', async () => {
    key = '';
    key = (await gql('mutation { signUp(input: { name: "crash" }) { secret } }')).signUp.secret;
    for (const name of ['c_in', 'c_out']) {
      await gql(`mutation { createStream(input: { name: "${name}", kind: APPEND, fields: [{ name: "id", type: "BIGINT" }] }) { id } }`);
    }
    const streamId = (await gql('{ streams(first: 1) { edges { node { id } } } }')).streams.edges[0].node.id;
    const gen = (
      await gql(
        `mutation ($s: ID!, $p: JSON) { createConnection(input: { name: "c_gen", connector: "datagen", type: SOURCE, streamId: $s, properties: $p }) { id } }`,
        { s: streamId, p: { 'rows-per-second': 5 } },
      )
    ).createConnection.id;
    const active = (await gql('mutation { createPipeline(input: { name: "c_copy", sql: "INSERT INTO c_out SELECT id FROM c_in" }) { id } }'))
      .createPipeline.id;
    const inactive = (await gql('mutation { createPipeline(input: { name: "c_idle", sql: "INSERT INTO c_out SELECT id FROM c_in" }) { id } }'))
      .createPipeline.id;

    await gql('mutation ($id: ID!) { activateConnection(id: $id) { id } }', { id: gen });
    await gql('mutation ($id: ID!) { activatePipeline(id: $id) { id } }', { id: active });
    // Mid-activation: the first job process has been started, the rest may not be.
    await waitFor('a job process', async () => ((await jobProcesses()).length > 0 ? true : undefined), 90_000);
    gateway!.kill('SIGKILL');
    await exited(gateway!);

    gateway = await startGateway();
    const jobs = { gen: decodeId(gen, 'Connection'), active: decodeId(active, 'Pipeline'), inactive: decodeId(inactive, 'Pipeline') };
    await waitFor('both active jobs RUNNING', async () => {
      const data = await gql('query ($a: ID!, $b: ID!) { a: pipeline(id: $a) { actualState } b: connection(id: $b) { actualState } }', {
        a: active,
        b: gen,
      });
      return data.a.actualState === 'RUNNING' && data.b.actualState === 'RUNNING' ? true : undefined;
    }, 300_000);
    const processes = await jobProcesses();
    const perJob = (id: string) => processes.filter((p) => p.marker.includes(id)).length;
    expect(perJob(jobs.gen)).toBe(1);
    expect(perJob(jobs.active)).toBe(1);
    expect(perJob(jobs.inactive)).toBe(0);
    expect(processes).toHaveLength(2);

    // A graceful stop takes every process of the gateway with it.
    gateway!.kill('SIGTERM');
    await exited(gateway!);
    expect(await processesOfScope(join(dataDir, 'local'))).toEqual([]);
  }, SLOW);
});
