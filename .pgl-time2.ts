import { PGlite } from '@electric-sql/pglite';
let t = performance.now();
const base = await PGlite.create();
console.log('create', (performance.now() - t).toFixed(0)); t = performance.now();
const dump = await base.dumpDataDir('none');
console.log('dump', (performance.now() - t).toFixed(0), dump.size); t = performance.now();
for (let i = 0; i < 3; i++) {
  t = performance.now();
  const p = await PGlite.create({ loadDataDir: dump });
  await p.query('select 1');
  console.log('load', (performance.now() - t).toFixed(0)); 
  await p.close();
}
t = performance.now();
const c = await base.clone?.();
console.log('clone', (performance.now() - t).toFixed(0), typeof base.clone);
