import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/**
 * Whether a tenant's `bootstrap.servers` names the platform's own Kafka. The brokers'
 * ACLs are what keeps accounts apart; refusing such connections up front is defence in
 * depth, and tells the user at once instead of through a failed job.
 *
 * Servers match by port and by address: the same host name, an address both names
 * resolve to, or, for a platform broker on loopback, any address of this machine (a
 * local job reaches the broker through all of them).
 */
export async function platformServerNamed(
  servers: string,
  platform: readonly string[],
  resolve: (host: string) => Promise<readonly string[]> = resolveHost,
): Promise<string | undefined> {
  const ours = platform.map(parseServer).filter((s): s is Server => s !== undefined);
  if (ours.length === 0) return undefined;
  const ourAddresses = new Map<string, Set<string>>();
  for (const server of ours) ourAddresses.set(server.host, new Set(await addressesOf(server.host, resolve)));
  for (const text of servers.split(',')) {
    const theirs = parseServer(text.trim());
    if (!theirs) continue;
    const candidates = ours.filter((server) => server.port === theirs.port);
    if (candidates.length === 0) continue;
    const theirAddresses = await addressesOf(theirs.host, resolve);
    for (const server of candidates) {
      const addresses = ourAddresses.get(server.host)!;
      if (server.host === theirs.host || theirAddresses.some((address) => addresses.has(address))) return text.trim();
      if ([...addresses].some(isLoopback) && theirAddresses.some((address) => isLoopback(address) || isUnspecified(address) || isLocalAddress(address))) {
        return text.trim();
      }
    }
  }
  return undefined;
}

interface Server {
  readonly host: string;
  readonly port: number;
}

function parseServer(text: string): Server | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(text.slice(colon + 1));
  if (!Number.isInteger(port)) return undefined;
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return { host, port };
}

async function addressesOf(host: string, resolve: (host: string) => Promise<readonly string[]>): Promise<string[]> {
  if (isIP(host)) return [normalize(host)];
  try {
    return (await resolve(host)).map(normalize);
  } catch {
    // Unresolvable here: the job could not reach it either, and the broker's ACLs stand.
    return [];
  }
}

const LOOKUP_TIMEOUT_MS = 2000;

async function resolveHost(host: string): Promise<readonly string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`looking up ${host} took too long`)), LOOKUP_TIMEOUT_MS);
  });
  try {
    return (await Promise.race([lookup(host, { all: true }), timeout])).map((entry) => entry.address);
  } finally {
    clearTimeout(timer);
  }
}

/** `::ffff:127.0.0.1` is 127.0.0.1. */
function normalize(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

const isLoopback = (address: string) => address.startsWith('127.') || address === '::1';
const isUnspecified = (address: string) => address === '0.0.0.0' || address === '::';

function isLocalAddress(address: string): boolean {
  return Object.values(networkInterfaces()).some((entries) => entries?.some((entry) => normalize(entry.address) === address));
}
