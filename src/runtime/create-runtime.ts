import type { Config } from '../config.js';
import { NoRuntime } from './no-runtime.js';
import type { Runtime } from './runtime.js';

/** The runtime named by WEIR_RUNTIME. */
export function createRuntime(config: Pick<Config, 'runtime'>): Runtime {
  switch (config.runtime) {
    case 'none':
      return new NoRuntime();
  }
}
