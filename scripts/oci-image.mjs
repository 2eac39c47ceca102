#!/usr/bin/env node
// Packs folders into a container image that `ctr images import` (and `docker load`)
// accept, without a builder, a daemon or a registry: a docker-archive tarball, one layer
// per --layer in order (a folder, or a layer .tar made before, e.g. a shared base),
// written deterministically (sorted entries, fixed times), so that the same folders always
// give the same image ID and a base layer shared by several images is stored once.
//
//   node scripts/oci-image.mjs --layer <dir|layer.tar>... --ref <name:tag> --out <file.tar>
//        [--entrypoint '["/bin/app"]'] [--cmd '["--flag"]'] [--env KEY=value]...
//        [--user 9999] [--workdir /opt/app] [--label key=value]...
//   node scripts/oci-image.mjs --layer <dir> --layer-out <layer.tar>
//        (only packs the folder as a layer, for later use as a --layer)
//
// File owners and modes are taken from the folders as they are (numeric ids), so a folder
// prepared as root with `chown 9999` on the writable paths gives an image whose user 9999
// owns exactly those paths.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    layer: { type: 'string', multiple: true, default: [] },
    'layer-out': { type: 'string' },
    ref: { type: 'string' },
    out: { type: 'string' },
    entrypoint: { type: 'string' },
    cmd: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    user: { type: 'string' },
    workdir: { type: 'string' },
    label: { type: 'string', multiple: true, default: [] },
  },
});

function fail(message) {
  process.stderr.write(`oci-image: ${message}\n`);
  process.exit(2);
}

function jsonArray(name, text) {
  if (text === undefined) return undefined;
  const value = JSON.parse(text);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    fail(`--${name} must be a JSON array of strings, got ${text}`);
  }
  return value;
}

const layers = values.layer.map((path) => resolve(path));
if (layers.length === 0) fail('at least one --layer is required');
for (const path of layers) {
  if (!statSync(path, { throwIfNoEntry: false })) fail(`no such folder or file: ${path}`);
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** GNU tar of a folder: sorted, owner ids kept, times fixed; no xattrs or ACLs of the host. */
function packLayer(dir, out) {
  execFileSync('tar', ['--create', '--file', out, '--directory', dir, '--sort=name',
    '--numeric-owner', '--mtime=@0', '--no-xattrs', '--no-acls', '--format=gnu', '.']);
}

/** Writes to a temporary name beside `out` and renames, so a reader never sees half a file. */
function writeAtomically(out, write) {
  const partial = join(dirname(out), `.${process.pid}.partial`);
  write(partial);
  renameSync(partial, out);
}

if (values['layer-out']) {
  if (layers.length !== 1 || !statSync(layers[0]).isDirectory()) fail('--layer-out takes one --layer folder');
  const out = resolve(values['layer-out']);
  writeAtomically(out, (partial) => packLayer(layers[0], partial));
  process.stdout.write(`${out} sha256:${sha256(readFileSync(out))}\n`);
  process.exit(0);
}
if (!values.ref || !values.out) fail('--ref and --out are required');
if (!/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$/.test(values.ref)) fail(`--ref must be name:tag, got ${values.ref}`);

const work = mkdtempSync(join(tmpdir(), 'oci-image-'));
try {
  const diffIds = [];
  let bytes = 0;
  for (const [index, path] of layers.entries()) {
    const staged = join(work, `layer-${index}.tar`);
    if (statSync(path).isDirectory()) packLayer(path, staged);
    else copyFileSync(path, staged);
    const layer = readFileSync(staged);
    const diffId = sha256(layer);
    bytes += layer.length;
    renameSync(staged, join(work, `${diffId}.tar`));
    diffIds.push(diffId);
  }

  const labels = Object.fromEntries(values.label.map((pair) => {
    const at = pair.indexOf('=');
    if (at < 1) fail(`--label must be key=value, got ${pair}`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
  for (const pair of values.env) if (pair.indexOf('=') < 1) fail(`--env must be KEY=value, got ${pair}`);
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      ...(values.entrypoint && { Entrypoint: jsonArray('entrypoint', values.entrypoint) }),
      ...(values.cmd && { Cmd: jsonArray('cmd', values.cmd) }),
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...values.env],
      ...(values.user && { User: values.user }),
      ...(values.workdir && { WorkingDir: values.workdir }),
      ...(Object.keys(labels).length > 0 && { Labels: labels }),
    },
    rootfs: { type: 'layers', diff_ids: diffIds.map((id) => `sha256:${id}`) },
    history: values.layer.map((path) => ({ created: '1970-01-01T00:00:00Z', created_by: `scripts/oci-image.mjs --layer ${path}` })),
  };
  const configJson = JSON.stringify(config);
  const configName = `${sha256(configJson)}.json`;
  writeFileSync(join(work, configName), configJson);
  const layerFiles = diffIds.map((id) => `${id}.tar`);
  writeFileSync(join(work, 'manifest.json'), JSON.stringify([
    { Config: configName, RepoTags: [values.ref], Layers: layerFiles },
  ]));

  const unique = [...new Set(layerFiles)];
  writeAtomically(resolve(values.out), (partial) => execFileSync('tar', ['--create', '--file', partial,
    '--directory', work, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
    '--format=gnu', 'manifest.json', configName, ...unique]));
  process.stdout.write(`${values.ref} sha256:${sha256(configJson)} ${layers.length} layer(s), ${(bytes / 1048576).toFixed(1)} MiB\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
