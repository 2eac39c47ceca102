import { kindOf, ValueProblem } from './value-problem.js';

/**
 * DATE, TIME, TIMESTAMP and TIMESTAMP_LTZ values of records: what a client may send and
 * the text Flink's json format (SQL timestamp standard) reads back.
 */

export function encodeDate(value: unknown): string {
  const match = typeof value === 'string' ? /^(\d{4})-(\d{2})-(\d{2})$/.exec(value) : null;
  if (!match || !isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3]))) {
    throw new ValueProblem(`DATE needs 'YYYY-MM-DD', got ${kindOf(value)}`);
  }
  return JSON.stringify(value);
}

/**
 * Flink 1.20's json format reads TIME to the whole second (the fraction is dropped), so a
 * fraction is accepted only when it is zeros, and never written.
 */
export function encodeTime(precision: number, value: unknown): string {
  const type = `TIME(${precision})`;
  const match = typeof value === 'string' ? /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/.exec(value) : null;
  if (!match || !isClockTime(match[1]!, match[2]!, match[3] ?? '00')) {
    throw new ValueProblem(`${type} needs 'HH:MM:SS', got ${kindOf(value)}`);
  }
  if (/[1-9]/.test(match[4] ?? '')) {
    throw new ValueProblem(`${type}: Flink's json format reads TIME to the whole second, so fractions are refused, got ${JSON.stringify(value)}`);
  }
  return JSON.stringify(`${match[1]}:${match[2]}:${match[3] ?? '00'}`);
}

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})?$/;

export function encodeTimestamp(precision: number, value: unknown): string {
  const type = `TIMESTAMP(${precision})`;
  const match = typeof value === 'string' ? DATE_TIME.exec(value) : null;
  if (match?.[8]) {
    throw new ValueProblem(`${type} has no time zone; drop ${JSON.stringify(match[8])} (or make the field TIMESTAMP_LTZ), got ${JSON.stringify(value)}`);
  }
  if (!match || !isDateTime(match)) {
    throw new ValueProblem(`${type} needs 'YYYY-MM-DD HH:MM:SS' with up to ${precision} fractional digits, got ${kindOf(value)}`);
  }
  const [, year, month, day, hour, minute, second = '00', digits = ''] = match;
  const fraction = checkFraction(type, precision, digits, value as string);
  return JSON.stringify(`${year}-${month}-${day} ${hour}:${minute}:${second}${fraction}`);
}

export function encodeTimestampLtz(precision: number, value: unknown): string {
  const type = `TIMESTAMP_LTZ(${precision})`;
  const needs = `${type} needs an ISO 8601 instant with a zone ('2024-05-01T12:30:00.123Z', '…+02:00') or epoch milliseconds`;
  let epochSeconds: number;
  let digits: string;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new ValueProblem(`${needs}, got ${kindOf(value)}`);
    epochSeconds = Math.floor(value / 1000);
    digits = String(value - epochSeconds * 1000).padStart(3, '0');
  } else {
    const match = typeof value === 'string' ? DATE_TIME.exec(value) : null;
    if (match && !match[8]) throw new ValueProblem(`${needs}; ${JSON.stringify(value)} has no zone`);
    if (!match || !isDateTime(match)) throw new ValueProblem(`${needs}, got ${kindOf(value)}`);
    const [, year, month, day, hour, minute, second = '00', fraction = '', zone = 'Z'] = match;
    const offsetMinutes = zoneOffsetMinutes(zone);
    if (offsetMinutes === undefined) throw new ValueProblem(`${needs}; bad zone ${JSON.stringify(zone)}`);
    const local = utcSeconds(Number(year), Number(month), Number(day), Number(hour), Number(minute), Number(second));
    epochSeconds = local - offsetMinutes * 60;
    digits = fraction;
  }
  const shown = typeof value === 'number' ? String(value) : JSON.stringify(value);
  const fraction = checkFraction(type, precision, digits, shown, true);
  const date = new Date(epochSeconds * 1000);
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new ValueProblem(`${type} needs a year from 0000 to 9999 (in UTC), got ${shown}`);
  const two = (n: number) => String(n).padStart(2, '0');
  const text =
    `${String(year).padStart(4, '0')}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}${fraction}Z`;
  return JSON.stringify(text);
}

/** `.` and exactly `precision` digits (none for 0); more digits only if they are zeros. */
function checkFraction(type: string, precision: number, digits: string, shown: string, quoted = false): string {
  const significant = digits.replace(/0+$/, '');
  if (significant.length > precision) {
    const got = quoted ? shown : JSON.stringify(shown);
    throw new ValueProblem(`${type} allows ${precision} fractional second digit${precision === 1 ? '' : 's'}, got ${got}`);
  }
  return precision === 0 ? '' : `.${significant.padEnd(precision, '0')}`;
}

function isDateTime(match: RegExpExecArray): boolean {
  const [, year, month, day, hour, minute, second = '00'] = match;
  return isCalendarDate(Number(year), Number(month), Number(day)) && isClockTime(hour!, minute!, second);
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

function isClockTime(hour: string, minute: string, second: string): boolean {
  return Number(hour) <= 23 && Number(minute) <= 59 && Number(second) <= 59;
}

function zoneOffsetMinutes(zone: string): number | undefined {
  if (zone === 'Z' || zone === 'z') return 0;
  const match = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
  if (!match || Number(match[2]) > 18 || Number(match[3]) > 59) return undefined;
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  return match[1] === '-' ? -minutes : minutes;
}

function utcSeconds(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not move years 0–99 into the 1900s.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime() / 1000;
}
