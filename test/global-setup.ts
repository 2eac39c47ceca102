/**
 * Vitest global setup: runs once in the main process, before any test file starts and
 * so before any test's timeout. It builds what the selected test files need and checks
 * what it cannot build, so that a fresh clone passes `npm install && npm test`:
 *
 *   flink     Flink and Kafka jars and the SQL runner (scripts/flink-setup.sh, Maven:
 *             10-20 s with a warm ~/.m2, minutes more to download ~220 MB into a cold one)
 *   kube      etcd, kube-apiserver and kube-controller-manager (scripts/kube-testenv.sh
 *             build, Go: 2508 packages, 10-23 min on 2 cores with a cold Go build
 *             cache, 40 s to link with a warm one), and the operator's CRDs from its
 *             release source (scripts/flink-operator.sh source)
 *   node      a whole single-node cluster: kubelet, kube-scheduler, kube-proxy, kubectl,
 *             CoreDNS, kube-router and their images (scripts/kube-node.sh build), and
 *             the Flink, operator and gateway images (scripts/kube-images.sh: debootstrap, and
 *             Maven for the operator, ~4 min cold); needs root and Debian's containerd,
 *             runc, CNI plugins and debootstrap
 *   s3        the s3proxy jar (scripts/s3proxy.sh jar, from Maven Central): the object
 *             store Flink pods on the node keep their state in
 *   postgres  a PostgreSQL server binary (installed, not built; or WEIR_TEST_DATABASE_URL)
 *   tsx       esbuild's native binary, for the tests that run code under tsx
 *
 * Both builds are cached under WEIR_CACHE_DIR (default .cache) and cost well under a
 * second when nothing changed. Only what the selected files need is prepared: running
 * one Postgres test on a cold clone does not wait for the Go build. A file's needs are
 * read from its text (see NEEDS); a file the patterns miss still works, as before, since
 * the helpers build on first use, but then inside its timeout. WEIR_TEST_SETUP=all
 * prepares everything whatever the selection.
 *
 * Progress goes to stderr: the scripts' own lines, and a line every 30 s of silence.
 * A missing prerequisite fails the run before any build starts, with one message that
 * names everything missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import { delimiter, join, relative, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

type Need = 'flink' | 'kube' | 'node' | 's3' | 'postgres' | 'tsx';

/**
 * What in a test file's text means it needs a build or a server: the helpers and entry
 * points that start Flink/Kafka JVMs, a Kubernetes control plane or a Postgres server.
 * Add a helper here when it starts one of them.
 */
const NEEDS: Record<Need, RegExp> = {
  flink:
    /\b(startLocalApp|startPreviewGateway|startExternalKafka|createLocalRuntime|flinkDistribution|startWeirOnNode|startPlatformOnNode)\b|src\/main\.ts/,
  kube: /\b(startKubeTestEnv|startKubeNode|startWeirOnNode|startPlatformOnNode)\b/,
  node: /\b(startKubeNode|startWeirOnNode|startPlatformOnNode)\b/,
  s3: /\b(startObjectStore|startWeirOnNode|startPlatformOnNode)\b/,
  postgres: /helpers\/postgres(\.js)?['"]|\b(startTestPostgres|describeDatabases)\b/,
  tsx: /\btsx\b/,
};

const LABEL: Record<Need, string> = {
  flink: 'Flink/Kafka',
  kube: 'Kubernetes control plane',
  node: 'Kubernetes node',
  s3: 'object store',
  postgres: 'Postgres server',
  tsx: 'tsx',
};

const QUIET_MS = 30_000;

/** Where the operator's release source lies unless WEIR_OPERATOR_SOURCE says otherwise (scripts/flink-operator.sh). */
const OPERATOR_SOURCE = '../shared/vendor/flink-kubernetes-operator-1.15.0-src.tar.gz';

class SetupError extends Error {
  override readonly name = 'SetupError';
}

const say = (line: string) => process.stderr.write(`[test setup] ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export default async function setup(project: TestProject): Promise<void> {
  try {
    await prepare(project);
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    // Thrown, the error would reach the terminal after a misleading "No test files
    // found" from vitest; nothing has started yet, so stop here with the message alone.
    process.stderr.write(`\n[test setup] FAILED: ${error.message}\n\n`);
    process.exit(1);
  }
}

async function prepare(project: TestProject): Promise<void> {
  const started = performance.now();
  const root = project.config.root;
  const needs = neededBy(selectedFiles(project), root);
  if (needs.has('node') && !runsAsRoot()) {
    // The node's tests skip themselves too (test/runtime/kubernetes/e2e); say why once.
    say('not preparing the Kubernetes node: it needs root, so its tests (test/runtime/kubernetes/e2e) are skipped');
    needs.delete('node');
  }

  const missing = missingPrerequisites(needs, root);
  if (missing.length > 0) {
    const message = [
      `missing prerequisite${missing.length > 1 ? 's' : ''} of the selected tests (see README, "Run it, test it"):`,
      ...missing.map((m) => `  - ${m}`),
    ].join('\n');
    throw new SetupError(message);
  }

  if (needs.has('tsx')) await ensureEsbuild(root);
  if (needs.has('flink')) {
    await step('Flink and Kafka jars, SQL runner: scripts/flink-setup.sh', root, ['scripts/flink-setup.sh']);
  }
  if (needs.has('kube')) {
    await step('etcd, kube-apiserver, kube-controller-manager: scripts/kube-testenv.sh build', root, [
      'scripts/kube-testenv.sh',
      'build',
    ]);
    if (!process.env['WEIR_KUBE_CRD_DIR']) {
      await step("the operator's release source (its CRDs): scripts/flink-operator.sh source", root, [
        'scripts/flink-operator.sh',
        'source',
      ]);
    }
  }
  if (needs.has('node')) {
    await step('kubelet, kube-scheduler, kube-proxy, CoreDNS, kube-router, their images: scripts/kube-node.sh build', root, [
      'scripts/kube-node.sh',
      'build',
    ]);
    await step('the Flink, operator and gateway images (the operator built from its source): scripts/kube-images.sh build', root, [
      'scripts/kube-images.sh',
      'build',
      'flink',
      'operator',
      'gateway',
    ]);
  }
  if (needs.has('s3')) {
    await step('the object store for Flink state (s3proxy from Maven Central): scripts/s3proxy.sh jar', root, ['scripts/s3proxy.sh', 'jar']);
  }
  say(`ready in ${seconds(performance.now() - started)}`);
}

/** The test files of this run (absolute paths); undefined when vitest does not say. */
function selectedFiles(project: TestProject): string[] | undefined {
  if (process.env['WEIR_TEST_SETUP'] === 'all') return undefined;
  try {
    // Vitest records the selected files before it runs global setup (state API: experimental).
    const paths = project.vitest.state.getPaths();
    return paths.length > 0 ? paths : undefined;
  } catch {
    return undefined;
  }
}

function neededBy(files: string[] | undefined, root: string): Set<Need> {
  const all = Object.keys(NEEDS) as Need[];
  if (!files) {
    say('preparing everything (WEIR_TEST_SETUP=all, or vitest did not say which files run)');
    return new Set(all);
  }
  const counts = new Map<Need, number>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const need of all) if (NEEDS[need].test(text)) counts.set(need, (counts.get(need) ?? 0) + 1);
  }
  const needed = all.filter((need) => counts.has(need));
  const notNeeded = all.filter((need) => !counts.has(need) && need !== 'tsx');
  const what = files.length === 1 ? relative(root, files[0]!) : `${files.length} test files`;
  say(
    `${what}: ${needed.length ? `need ${needed.map((n) => `${LABEL[n]} (${counts.get(n)})`).join(', ')}` : 'need no build'}` +
      (notNeeded.length ? `; not preparing ${notNeeded.map((n) => LABEL[n]).join(', ')} (no selected file uses it)` : ''),
  );
  return new Set(needed);
}

// ---------------------------------------------------------------------------- prerequisites

function onPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function missingPrerequisites(needs: Set<Need>, root: string): string[] {
  const missing: string[] = [];
  const command = (name: string, hint: string) => {
    if (!onPath(name)) missing.push(`${name}: not found on PATH (${hint})`);
  };
  if (needs.has('flink')) {
    command('java', 'Java 17 or newer; Debian: apt-get install openjdk-17-jdk-headless');
    command('mvn', 'Maven; Debian: apt-get install maven');
    command('flock', 'Debian: apt-get install util-linux');
  }
  if (needs.has('kube')) {
    command('go', `Go ${goVersionOf(root) ?? '1.26'} or newer, from go.dev/dl`);
    for (const [name, pkg] of [
      ['openssl', 'openssl'],
      ['curl', 'curl'],
      ['ss', 'iproute2'],
      ['flock', 'util-linux'],
      ['setsid', 'util-linux'],
    ] as const) {
      if (name === 'flock' && needs.has('flink')) continue; // said once
      command(name, `Debian: apt-get install ${pkg}`);
    }
    if (!process.env['WEIR_KUBE_CRD_DIR']) {
      const source = process.env['WEIR_OPERATOR_SOURCE'] ?? resolve(root, OPERATOR_SOURCE);
      try {
        accessSync(source, constants.R_OK);
      } catch {
        missing.push(
          `the Flink Kubernetes Operator 1.15.0 source (its CRDs): no ${source} (set WEIR_OPERATOR_SOURCE to the release source tarball)`,
        );
      }
    }
  }
  if (needs.has('node')) {
    for (const [name, pkg] of [
      ['containerd', 'containerd'],
      ['runc', 'runc'],
      ['nft', 'nftables'],
      ['iptables', 'iptables'],
      ['conntrack', 'conntrack'],
      ['gcc', 'gcc'],
      ['debootstrap', 'debootstrap'],
      ['ipset', 'ipset'],
    ] as const) {
      command(name, `Debian: apt-get install ${pkg}`);
    }
    for (const [path, pkg] of [
      ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
      ['/bin/busybox', 'busybox-static'],
    ] as const) {
      try {
        accessSync(path, constants.X_OK);
      } catch {
        missing.push(`${path}: not found (Debian: apt-get install ${pkg})`);
      }
    }
  }
  if (needs.has('postgres') && !process.env['WEIR_TEST_DATABASE_URL']) {
    const postgres = postgresProblem();
    if (postgres) missing.push(postgres);
  }
  return missing;
}

/** A Kubernetes node needs root (network, cgroups, mounts): test/helpers/kube-node.ts. */
const runsAsRoot = () => process.getuid?.() === 0;

/** The `go` line of k8s/testenv/go.mod, e.g. 1.26. */
function goVersionOf(root: string): string | undefined {
  try {
    return /^go (\d+\.\d+)/m.exec(readFileSync(join(root, 'k8s/testenv/go.mod'), 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** As test/helpers/postgres.ts looks for them: Debian's server binaries, run as `postgres` when we are root. */
function postgresProblem(): string | undefined {
  const base = '/usr/lib/postgresql';
  const hint = 'Debian: apt-get install postgresql; or set WEIR_TEST_DATABASE_URL to a superuser URL of a running server';
  let versions: string[] = [];
  try {
    versions = readdirSync(base);
  } catch {
    // none
  }
  const found = versions.some((v) =>
    ['initdb', 'postgres'].every((bin) => {
      try {
        accessSync(join(base, v, 'bin', bin), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }),
  );
  if (!found) return `PostgreSQL server binaries: none in ${base}/<version>/bin (${hint})`;
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) {
    return `a \`postgres\` OS user: running as root, and Postgres refuses to run as root (${hint})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------- steps

/** tsx runs on esbuild's native binary, which npm may have left without its install script (as .ci/run checks). */
async function ensureEsbuild(root: string): Promise<void> {
  const works = () =>
    spawnSync(process.execPath, ['-e', "require('esbuild').transformSync('let a: number = 1', { loader: 'ts' })"], {
      cwd: root,
      stdio: 'ignore',
    }).status === 0;
  const started = performance.now();
  if (works()) {
    say(`tsx: esbuild works (${seconds(performance.now() - started)})`);
    return;
  }
  say("esbuild's binary does not work; running its install script (node_modules/esbuild/install.js)");
  const install = spawnSync(process.execPath, ['install.js'], { cwd: join(root, 'node_modules/esbuild'), encoding: 'utf8' });
  if (install.status !== 0 || !works()) {
    throw new SetupError(
      `esbuild's native binary does not work, and its install script did not fix it (tsx needs it): ${install.stderr?.trim() ?? ''}\n` +
        'Reinstall the packages: rm -rf node_modules && npm install',
    );
  }
}

/** Runs a bash script from the repository root, passing its stderr (progress) through. */
async function step(title: string, root: string, args: string[]): Promise<void> {
  const started = performance.now();
  say(`==> ${title}`);
  let last = started;
  const tail: string[] = [];
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn('bash', args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let pending = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      last = performance.now();
      const lines = (pending + chunk).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        process.stderr.write(`${line}\n`);
        tail.push(line);
        if (tail.length > 5) tail.shift();
      }
    });
    const quiet = setInterval(() => {
      if (performance.now() - last >= QUIET_MS) {
        last = performance.now();
        say(`... still running (${seconds(last - started)})`);
      }
    }, 1000);
    child.once('error', (error) => {
      clearInterval(quiet);
      fail(error);
    });
    child.once('close', (exit) => {
      clearInterval(quiet);
      if (pending) {
        process.stderr.write(`${pending}\n`);
        tail.push(pending);
      }
      done(exit);
    });
  });
  if (code !== 0) {
    say(`<== ${title} FAILED (${seconds(performance.now() - started)})`);
    throw new SetupError(`${args.join(' ')} failed (exit ${code}); its last lines:\n${tail.join('\n')}`);
  }
  say(`<== ${title} (${seconds(performance.now() - started)})`);
}
