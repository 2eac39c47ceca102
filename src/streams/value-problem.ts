/** A problem with one value; `where` is the path below the field, e.g. `[2].price`. */
export class ValueProblem extends Error {
  constructor(message: string, readonly where = '') {
    super(message);
  }
  under(step: string): ValueProblem {
    return new ValueProblem(this.message, `${step}${this.where}`);
  }
}

/** The value as a message shows it: short, and its JSON kind when that is the problem. */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  const short = text.length > 60 ? `${text.slice(0, 57)}…` : text;
  return typeof value === 'string' ? `the string ${short}` : short;
}
