import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cyclesOf, importGraph } from './imports.js';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

/** The imports that break a rule of src/README.md: `from` modules importing `to` modules. */
function crossings(from: string, to: readonly string[]): string[] {
  const found: string[] = [];
  for (const [module, targets] of importGraph(SRC)) {
    if (!module.startsWith(from)) continue;
    for (const target of targets) if (to.some((folder) => target.startsWith(folder))) found.push(`${module} -> ${target}`);
  }
  return found;
}

describe('the source layout (src/README.md)', () => {
  it('has no import cycle', () => {
    expect(cyclesOf(importGraph(SRC))).toEqual([]);
  });

  it('every relative import names a module that exists', () => {
    const graph = importGraph(SRC);
    const missing = [...graph].flatMap(([module, targets]) => targets.filter((t) => !graph.has(t)).map((t) => `${module} -> ${t}`));
    expect(missing).toEqual([]);
  });

  it('imports run one way: backends use preview/, flink/ and streams/, never the reverse', () => {
    expect(crossings('src/preview/', ['src/runtime/'])).toEqual([]);
    expect(crossings('src/flink/', ['src/runtime/', 'src/preview/'])).toEqual([]);
    expect(crossings('src/streams/', ['src/runtime/', 'src/preview/', 'src/flink/'])).toEqual([]);
  });

  it('platform/ needs nothing of the domain but its row types', () => {
    const outside = crossings('src/platform/', ['src/']).filter((c) => !/-> src\/(platform\/|[a-z]+\/[a-z-]+\.table\.ts$)/.test(c));
    expect(outside).toEqual([]);
  });

  it('the two backends do not reach into each other', () => {
    expect(crossings('src/runtime/local/', ['src/runtime/kubernetes/'])).toEqual([]);
    expect(crossings('src/runtime/kubernetes/', ['src/runtime/local/'])).toEqual([]);
  });

  it('the cycle check finds a cycle when there is one', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(cyclesOf(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });
});
