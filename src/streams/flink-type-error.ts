/** A Flink SQL data type that cannot be parsed, or that stream fields may not use. */
export class FlinkTypeError extends Error {
  override readonly name = 'FlinkTypeError';
  constructor(
    readonly problem: string,
    /** 1-based column in the type text. */
    readonly column: number,
  ) {
    super(`${problem} (at column ${column})`);
  }
}
