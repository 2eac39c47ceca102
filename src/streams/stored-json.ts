/**
 * JSON.parse for stored records, except that numbers a JavaScript double cannot hold
 * exactly stay strings of their digits: Flink writes BIGINT and DECIMAL values as plain
 * JSON numbers (`9007199254740993`, `12345678901234567.89`), and the API must not round
 * them. Everything else parses as JSON.parse would.
 */
export function parseStoredJson(text: string): unknown {
  const parser = new Parser(text);
  parser.space();
  const value = parser.value(0);
  parser.space();
  if (parser.index !== text.length) parser.fail('unexpected text after the value');
  return value;
}

/** Deeper than this is not a record Weir wrote (types nest at most 32 levels). */
const MAX_DEPTH = 128;
const SAFE_DIGITS = 15;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Parser {
  index = 0;

  constructor(private readonly text: string) {}

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail('nested too deeply');
    const char = this.text[this.index];
    if (char === '{') return this.object(depth);
    if (char === '[') return this.array(depth);
    if (char === '"') return this.string();
    if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) return this.number();
    for (const [word, result] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.index)) {
        this.index += word.length;
        return result;
      }
    }
    return this.fail('unexpected character');
  }

  private object(depth: number): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    this.index += 1;
    this.space();
    if (this.text[this.index] === '}') {
      this.index += 1;
      return result;
    }
    for (;;) {
      this.space();
      if (this.text[this.index] !== '"') this.fail('expected a key');
      const key = this.string();
      this.space();
      this.expect(':');
      this.space();
      // defineProperty: a "__proto__" key is data, as with JSON.parse.
      Object.defineProperty(result, key, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
      this.space();
      if (this.text[this.index] === ',') {
        this.index += 1;
        continue;
      }
      this.expect('}');
      return result;
    }
  }

  private array(depth: number): unknown[] {
    const result: unknown[] = [];
    this.index += 1;
    this.space();
    if (this.text[this.index] === ']') {
      this.index += 1;
      return result;
    }
    for (;;) {
      this.space();
      result.push(this.value(depth + 1));
      this.space();
      if (this.text[this.index] === ',') {
        this.index += 1;
        continue;
      }
      this.expect(']');
      return result;
    }
  }

  private string(): string {
    const start = this.index;
    this.index += 1;
    for (;;) {
      const char = this.text[this.index];
      if (char === undefined) this.fail('unterminated string');
      if (char === '\\') this.index += 2;
      else if (char === '"') break;
      else this.index += 1;
    }
    this.index += 1;
    return JSON.parse(this.text.slice(start, this.index)) as string;
  }

  private number(): number | string {
    NUMBER.lastIndex = this.index;
    const match = NUMBER.exec(this.text);
    if (!match) return this.fail('bad number');
    const literal = match[0];
    this.index += literal.length;
    const value = Number(literal);
    if (/^-?\d+$/.test(literal)) return Number.isSafeInteger(value) ? value : literal;
    const mantissa = literal.replace(/[eE].*$/, '').replace(/[-.]/g, '').replace(/^0+/, '').replace(/0+$/, '');
    return mantissa.length > SAFE_DIGITS || !Number.isFinite(value) ? literal : value;
  }

  space(): void {
    while (/[ \t\n\r]/.test(this.text[this.index] ?? '')) this.index += 1;
  }

  private expect(char: string): void {
    if (this.text[this.index] !== char) this.fail(`expected ${JSON.stringify(char)}`);
    this.index += 1;
  }

  fail(message: string): never {
    throw new SyntaxError(`${message} at position ${this.index} of a stored record`);
  }
}
